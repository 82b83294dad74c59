package irvm_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/opa-pat/opa-pat/plugin/irvm"
)

func compileModule(t *testing.T, src string) *ast.Compiler {
	t.Helper()
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(map[string]*ast.Module{"x.rego": ast.MustParseModuleWithOpts(src, ast.ParserOptions{RegoVersion: ast.RegoV1})}); c.Failed() {
		t.Fatal(c.Errors)
	}
	return c
}

// TestDataFromAnyStore: with a store that hands out Go values (not AST), a
// plan reads the paths it walks, iterates over base documents, looks keys up
// by variables and sees absent paths as undefined, as topdown does.
func TestDataFromAnyStore(t *testing.T) {
	c := compileModule(t, `package x
names contains n if some n, _ in data.orgs
enterprise(org) := data.orgs[org].enterprise
acme := enterprise("octo")
missing := data.orgs.nope.enterprise
whole := data.orgs
deep := data.orgs.octo.limits[1]
count_all := count(data.orgs)
`)
	data := map[string]any{"orgs": map[string]any{
		"octo":  map[string]any{"enterprise": "acme", "limits": []any{30, 90}},
		"indie": map[string]any{},
	}}
	for _, store := range []storage.Store{inmem.NewFromObject(data), inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))} {
		for _, q := range []string{"data.x.names", "data.x.acme", "data.x.missing", "data.x.whole", "data.x.deep", "data.x.count_all"} {
			want, werr := eval(t, c, store, q, nil, false)
			got, gerr := eval(t, c, store, q, nil, true)
			if werr != nil || gerr != nil {
				t.Fatalf("%s: errors %v / %v", q, werr, gerr)
			}
			if (want == nil) != (got == nil) || (want != nil && ast.Compare(want, got) != 0) {
				t.Errorf("%s: topdown %v, irvm %v", q, want, got)
			}
		}
	}
}

// TestConflict: two values for a complete rule are an evaluation error
// under both evaluators, never one of the values.
func TestConflict(t *testing.T) {
	c := compileModule(t, `package x
p := v if v := input.a
p := v if v := input.b
`)
	store := inmem.New()
	in := ast.MustParseTerm(`{"a": 1, "b": 2}`).Value
	for _, vm := range []bool{false, true} {
		v, err := eval(t, c, store, "data.x.p", in, vm)
		var te *topdown.Error
		if !errors.As(err, &te) || te.Code != topdown.ConflictErr {
			t.Errorf("vm %v: %v, %v; want a conflict error", vm, v, err)
		}
	}
}

// TestCancel: a long evaluation stops when its context ends.
func TestCancel(t *testing.T) {
	c := compileModule(t, `package x
n := count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); (i + j) % 7 == 0])
`)
	store := inmem.New()
	pq := prepare(t, c, store, "data.x.n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pq.Eval(ctx)
	var te *topdown.Error
	if !errors.As(err, &te) || te.Code != topdown.CancelErr {
		t.Fatalf("err %v; want a cancellation", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stopped after %v", d)
	}
}

// TestIntegerArithmetic: the 64-bit fast path of plus, minus and mul gives
// OPA's results, overflow included (which leaves the fast path).
func TestIntegerArithmetic(t *testing.T) {
	c := compileModule(t, `package x
sum := input.a + input.b
diff := input.a - input.b
prod := input.a * input.b
`)
	store := inmem.New()
	r := rand.New(rand.NewPCG(3, 4))
	edge := []int64{0, 1, -1, 2, 1024, 1025, -1025, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1, 1 << 32, -(1 << 32), 3037000500}
	pick := func() int64 {
		if r.IntN(3) == 0 {
			return edge[r.IntN(len(edge))]
		}
		return r.Int64N(1<<40) - 1<<39
	}
	for range 300 {
		a, b := pick(), pick()
		in := ast.MustParseTerm(`{"a": ` + strconv.FormatInt(a, 10) + `, "b": ` + strconv.FormatInt(b, 10) + `}`).Value
		for _, q := range []string{"data.x.sum", "data.x.diff", "data.x.prod"} {
			want, _ := eval(t, c, store, q, in, false)
			got, _ := eval(t, c, store, q, in, true)
			if want == nil || got == nil || ast.Compare(want, got) != 0 {
				t.Fatalf("%s with a=%d b=%d: topdown %v, irvm %v", q, a, b, want, got)
			}
		}
	}
	// Not integers: the built-in decides.
	in := ast.MustParseTerm(`{"a": 1.5, "b": 2}`).Value
	if got, _ := eval(t, c, store, "data.x.prod", in, true); got == nil || ast.Compare(got, ast.Number("3")) != 0 {
		t.Fatalf("1.5 * 2 = %v", got)
	}
	in = ast.MustParseTerm(`{"a": "x", "b": 2}`).Value
	if got, err := eval(t, c, store, "data.x.sum", in, true); got != nil || err != nil {
		t.Fatalf(`"x" + 2 = %v, %v; want undefined`, got, err)
	}
}

// TestNoStore: without a store in the prepare context and no default, the
// target refuses to prepare, with a clear error.
func TestNoStore(t *testing.T) {
	c := compileModule(t, "package x\np := 1\n")
	_, err := prepareErr(c, inmem.New(), "data.x.p", context.Background())
	if !errors.Is(err, irvm.ErrNoStore) {
		t.Fatalf("err %v; want %v", err, irvm.ErrNoStore)
	}
}

// TestSystemHidden: like topdown, reading all of data leaves data.system
// out (base documents and rules alike), while data.system.… by path, and
// under `with`, stays readable.
func TestSystemHidden(t *testing.T) {
	c := compileModule(t, `package system.authz
allow := true
`)
	data := map[string]any{"a": 1, "system": map[string]any{"conf": "secret"}}
	for _, store := range []storage.Store{inmem.NewFromObject(data), inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))} {
		for _, q := range []string{"data", "count(data)", "{k | some k, _ in data}", "data.system.authz.allow",
			"data.system.conf", "data with data.a as 9", "data.system.conf with data.a as 9"} {
			want, werr := eval(t, c, store, q, nil, false)
			got, gerr := eval(t, c, store, q, nil, true)
			if werr != nil || gerr != nil {
				t.Fatalf("%s: errors %v / %v", q, werr, gerr)
			}
			if (want == nil) != (got == nil) || (want != nil && ast.Compare(want, got) != 0) {
				t.Errorf("%s: topdown %v, irvm %v", q, want, got)
			}
		}
	}
	// And the hiding is real: topdown leaves it out too.
	if v, _ := eval(t, c, inmem.NewFromObject(data), "data", nil, true); v.(ast.Object).Get(ast.StringTerm("system")) != nil {
		t.Fatalf("data has system: %v", v)
	}
}

// TestNoNestedTransaction: an evaluation under a caller's read transaction
// opens no second one. OPA's in-memory store takes a read lock per read
// transaction and a writer's commit waits for all of them; a second read
// lock asked for while that writer waits would never be granted (Go's
// RWMutex), deadlocking the caller against a bundle activation.
func TestNoNestedTransaction(t *testing.T) {
	ctx := context.Background()
	c := compileModule(t, "package x\np := data.a\n")
	for _, store := range []storage.Store{
		inmem.NewFromObject(map[string]any{"a": 1}),
		inmem.NewFromObjectWithOpts(map[string]any{"a": 1}, inmem.OptReturnASTValuesOnRead(true)),
	} {
		txn, err := store.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		written := make(chan error, 1)
		go func() { written <- storage.WriteOne(ctx, store, storage.AddOp, storage.MustParsePath("/b"), 2) }()
		time.Sleep(50 * time.Millisecond) // the writer now waits for txn to end

		decided := make(chan error, 1)
		go func() {
			// As OPA's server does: prepare and evaluate in its transaction.
			pq, err := rego.New(rego.Query("data.x.p"), rego.Compiler(c), rego.Store(store), rego.Transaction(txn),
				rego.Target(irvm.Name)).PrepareForEval(irvm.WithStore(ctx, store))
			if err == nil {
				_, err = pq.Eval(ctx, rego.EvalTransaction(txn))
			}
			decided <- err
		}()
		select {
		case err := <-decided:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the evaluation waited on the store: a second transaction under the caller's")
		}
		store.Abort(ctx, txn)
		if err := <-written; err != nil {
			t.Fatal(err)
		}
	}
}
