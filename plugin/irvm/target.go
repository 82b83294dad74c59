package irvm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// targetPrefix names this package's targets; one is registered per store,
// since OPA hands a target plugin the plan but not the store it reads.
const targetPrefix = "pat-irvm-"

var (
	targetsMu sync.Mutex
	targets   = map[storage.Store]string{}
	nextID    atomic.Int64
)

// Target returns the rego target name that evaluates queries with this
// package against store: rego.New(..., rego.Store(store),
// rego.Target(irvm.Target(store))). It registers the target on first use.
func Target(store storage.Store) string {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	if name, ok := targets[store]; ok {
		return name
	}
	name := targetPrefix + strconv.FormatInt(nextID.Add(1), 10)
	rego.RegisterPlugin(name, &target{name: name, store: store})
	targets[store] = name
	return name
}

type target struct {
	name  string
	store storage.Store
}

func (t *target) IsTarget(name string) bool { return name == t.name }

func (t *target) PrepareForEval(ctx context.Context, p *ir.Policy, opts ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	cfg := &rego.PrepareConfig{}
	for _, o := range opts {
		o(cfg)
	}
	prog, err := compile(p, cfg.BuiltinFuncs())
	if err != nil {
		return nil, err
	}
	e := &evaluator{prog: prog, store: t.store, astRoot: readsAST(ctx, t.store)}
	e.pool.New = func() any { return newMachine(prog) }
	return e, nil
}

type evaluator struct {
	prog    *program
	store   storage.Store
	astRoot bool // the store hands out its data as AST values (OPA's in-memory store, optimized for reads)
	pool    sync.Pool
}

// readsAST tells whether reading the store's root gives an AST value, which
// the in-memory store does without copying when OPA runs with
// --optimize-store-for-read-speed (opa-pat up does). Then a plan walks
// data directly; otherwise it reads each path it needs from the store.
func readsAST(ctx context.Context, store storage.Store) bool {
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return false
	}
	defer store.Abort(ctx, txn)
	v, err := store.Read(ctx, txn, storage.Path{})
	if err != nil {
		return false
	}
	_, ok := v.(ast.Value)
	return ok
}

// ErrCanceled is returned when the evaluation's context ended first.
var ErrCanceled = errors.New("irvm: evaluation canceled")

// Eval runs the plan on one input and returns the result set rego expects:
// a set of objects, one per result, from query variable to value.
func (e *evaluator) Eval(ctx context.Context, ectx *rego.EvalContext, runtime ast.Value) (ast.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCanceled, err)
	}
	m := e.pool.Get().(*machine)
	defer e.release(m)

	txn := ectx.Transaction()
	if txn == nil {
		var err error
		if txn, err = e.store.NewTransaction(ctx); err != nil {
			return nil, err
		}
		defer e.store.Abort(ctx, txn)
	}
	dd := dataDoc{ctx: ctx, store: e.store, txn: txn}
	m.data = &dd

	now := ectx.Time()
	if now.IsZero() {
		now = time.Now()
	}
	var rt *ast.Term
	if runtime != nil {
		rt = ast.NewTerm(runtime)
	}
	m.bctx = topdown.BuiltinContext{
		Context:                     ctx,
		Metrics:                     ectx.Metrics(),
		Seed:                        ectx.Seed(),
		Time:                        ast.NewTerm(int64Number(now.UnixNano())),
		Cancel:                      ectx.ExternalCancel(),
		Runtime:                     rt,
		Cache:                       builtins.Cache{},
		InterQueryBuiltinCache:      ectx.InterQueryBuiltinCache(),
		InterQueryBuiltinValueCache: ectx.InterQueryBuiltinValueCache(),
		NDBuiltinCache:              ectx.NDBCache(),
		PrintHook:                   ectx.PrintHook(),
		DistributedTracingOpts:      ectx.TracingOpts(),
		Capabilities:                ectx.Capabilities(),
	}
	m.strict = ectx.StrictBuiltinErrors()
	m.result = ast.NewSet()

	frame := m.stack[:m.prog.plan.frame]
	clear(frame)
	if in := ectx.ParsedInput(); in != nil {
		frame[ir.Input] = ast.NewTerm(in)
	}
	frame[ir.Data] = ast.NewTerm(&dataRef{path: storage.Path{}})
	if e.astRoot {
		if v, err := e.store.Read(ctx, txn, storage.Path{}); err == nil {
			if av, ok := v.(ast.Value); ok {
				frame[ir.Data] = ast.NewTerm(av)
			}
		}
	}
	m.sp = m.prog.plan.frame
	for _, b := range m.prog.plan.blocks {
		if r := m.run(frame, b); r == returned || m.err != nil {
			break
		}
	}
	if m.err != nil {
		return nil, m.err
	}
	return m.result, nil
}

func (e *evaluator) release(m *machine) {
	clear(m.stack)
	clear(m.memo)
	m.sp = 0
	m.err = nil
	m.data = nil
	m.result = nil
	m.bctx = topdown.BuiltinContext{}
	clear(m.args[:])
	e.pool.Put(m)
}

func int64Number(n int64) ast.Number {
	return ast.Number(strconv.FormatInt(n, 10))
}
