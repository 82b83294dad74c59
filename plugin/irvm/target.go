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
)

// Name is the rego target of this package: rego.Target(irvm.Name). The
// store a plan reads comes with the context of PrepareForEval (WithStore),
// else from SetDefault.
const Name = "pat-irvm"

// One target plugin is registered, at init: rego looks its plugins up on
// every evaluation without a lock, so none may be added later. It serves
// Name and, while SetDefault holds a store, the default target "" (every
// query that names no target).
func init() {
	rego.RegisterPlugin(Name, target{})
}

var dflt atomic.Pointer[defaultStore]

type defaultStore struct{ store storage.Store }

type storeKey struct{}

// WithStore returns a context for rego's PrepareForEval that has the plan
// read store.
func WithStore(ctx context.Context, store storage.Store) context.Context {
	return context.WithValue(ctx, storeKey{}, store)
}

// SetDefault makes this package the evaluator, against store, of every
// query in the process that names no target (OPA's REST API, decision-log
// masking, ...); rego.Target("rego") still asks for OPA's topdown. The last
// call wins, as with the pat built-ins' index: one sidecar per process.
// release undoes it unless another store was set since.
func SetDefault(store storage.Store) (release func()) {
	d := &defaultStore{store: store}
	dflt.Store(d)
	return func() { dflt.CompareAndSwap(d, nil) }
}

type target struct{}

func (target) IsTarget(name string) bool {
	return name == Name || (name == "" && dflt.Load() != nil)
}

// ErrNoStore is returned by a prepare that has no store to read.
var ErrNoStore = errors.New("irvm: no store: prepare with irvm.WithStore or set a default")

func (target) PrepareForEval(ctx context.Context, p *ir.Policy, opts ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	store, _ := ctx.Value(storeKey{}).(storage.Store)
	if store == nil {
		if d := dflt.Load(); d != nil {
			store = d.store
		}
	}
	if store == nil {
		return nil, ErrNoStore
	}
	cfg := &rego.PrepareConfig{}
	for _, o := range opts {
		o(cfg)
	}
	prog, err := compile(p, cfg.BuiltinFuncs())
	if err != nil {
		return nil, err
	}
	e := &evaluator{prog: prog, store: store}
	e.pool.New = func() any { return newMachine(prog) }
	return e, nil
}

type evaluator struct {
	prog  *program
	store storage.Store
	// rootKind says whether the store hands out its data as AST values
	// (OPA's in-memory store, optimized for reads, as opa-pat up runs it):
	// a plan then walks the data tree directly; otherwise it reads each path
	// it needs. Found out by the first evaluation, in its own transaction:
	// a second transaction opened here, while the caller holds one, could
	// deadlock against a writer waiting in between.
	rootKind atomic.Int32
	pool     sync.Pool
}

const (
	rootUnknown int32 = iota
	rootAST
	rootPaths
)

// root returns the data document's reference for one evaluation.
func (e *evaluator) root(ctx context.Context, txn storage.Transaction) *dataRef {
	r := &dataRef{path: storage.Path{}}
	kind := e.rootKind.Load()
	if kind == rootPaths {
		return r
	}
	v, err := e.store.Read(ctx, txn, storage.Path{})
	if err != nil {
		return r
	}
	obj, ok := v.(ast.Object)
	if kind == rootUnknown {
		if ok {
			e.rootKind.Store(rootAST)
		} else {
			e.rootKind.Store(rootPaths)
		}
	}
	r.root = obj
	return r
}

// ErrTracing is returned for an evaluation that asks for a trace (OPA's
// explain=full, opa eval --explain): a plan has no Rego expressions to trace.
var ErrTracing = errors.New("irvm: tracing and explanations need OPA's topdown evaluator (plugins.pat.evaluator: topdown)")

// ErrCanceled is returned when the evaluation's context ended first.
var ErrCanceled = errors.New("irvm: evaluation canceled")

// Eval runs the plan on one input and returns the result set rego expects:
// a set of objects, one per result, from query variable to value.
func (e *evaluator) Eval(ctx context.Context, ectx *rego.EvalContext, runtime ast.Value) (ast.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCanceled, err)
	}
	for _, t := range ectx.QueryTracers() {
		if t != nil && t.Enabled() {
			return nil, ErrTracing
		}
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
	m.data = dataDoc{ctx: ctx, store: e.store, txn: txn}

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
		Cache:                       m.cache,
		InterQueryBuiltinCache:      ectx.InterQueryBuiltinCache(),
		InterQueryBuiltinValueCache: ectx.InterQueryBuiltinValueCache(),
		NDBuiltinCache:              ectx.NDBCache(),
		PrintHook:                   ectx.PrintHook(),
		DistributedTracingOpts:      ectx.TracingOpts(),
		Capabilities:                ectx.Capabilities(),
	}
	m.strict = ectx.StrictBuiltinErrors()
	m.ctx, m.steps = ctx, 0
	m.result = ast.NewSet()

	frame := m.stack[:m.prog.plan.frame]
	clear(frame)
	if in := ectx.ParsedInput(); in != nil {
		frame[ir.Input] = ast.NewTerm(in)
	} else if raw := ectx.RawInput(); raw != nil && *raw != nil {
		// rego parses a raw input only for its own evaluator.
		in, err := ast.InterfaceToValue(*raw)
		if err != nil {
			return nil, fmt.Errorf("irvm: input: %w", err)
		}
		frame[ir.Input] = ast.NewTerm(in)
	}
	frame[ir.Data] = ast.NewTerm(e.root(ctx, txn))
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
	for _, memo := range m.spare {
		clear(memo)
	}
	m.sp = 0
	m.err = nil
	m.data = dataDoc{}
	m.result = nil
	m.bctx = topdown.BuiltinContext{}
	m.ctx = nil
	clear(m.cache)
	clear(m.args[:])
	e.pool.Put(m)
}

func int64Number(n int64) ast.Number {
	return ast.Number(strconv.FormatInt(n, 10))
}
