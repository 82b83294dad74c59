package rego

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/opa-pat/opa-pat/plugin/irvm"
)

// TestRego runs every Rego test under rego/ in-process, the way the stock
// `opa test --capabilities rego/capabilities.json rego/` run does: only .rego
// files are loaded, and the pat.* built-ins are known from the capabilities
// file alone, so the tests must mock them. It fails when a Rego test fails or
// errors, and when no Rego test ran.
func TestRego(t *testing.T) {
	if n := runRegoTests(t, loadModules(t, ".")); n == 0 {
		t.Fatal("no Rego test ran")
	}
}

// TestExamplePolicyTests runs examples/policy, a service team's tests of the
// decision with every pat.* built-in mocked as docs/builtins.md shows them,
// against the policy alone, as the command at the top of its file does under
// the stock CLI; and checks that docs/builtins.md shows that file as it is.
func TestExamplePolicyTests(t *testing.T) {
	modules := loadModules(t, filepath.Join("..", "examples", "policy"))
	for _, f := range []string{"pat.rego", "settings.rego"} {
		maps.Copy(modules, loadModules(t, filepath.Join("pat", f)))
	}
	if n := runRegoTests(t, modules); n != 3 {
		t.Fatalf("%d example tests ran, want 3", n)
	}
	example, err := os.ReadFile(filepath.Join("..", "examples", "policy", "service_test.rego"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "builtins.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```rego\n"+string(example)+"```\n") {
		t.Error("docs/builtins.md does not show examples/policy/service_test.rego as it is")
	}
}

// runRegoTests runs the Rego tests among modules, compiled as the stock
// `opa test --capabilities rego/capabilities.json` run compiles them, each as
// a Go subtest that fails when the Rego test fails or errors, and returns how
// many ran.
func runRegoTests(t *testing.T, modules map[string]*ast.Module) int {
	t.Helper()
	caps, err := ast.LoadCapabilitiesFile("capabilities.json")
	if err != nil {
		t.Fatalf("load capabilities: %v", err)
	}
	compiler := ast.NewCompiler().
		WithCapabilities(caps).
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1)

	ch, err := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		SetTimeout(time.Minute).
		SetModules(modules).
		RunTests(t.Context(), nil)
	if err != nil {
		t.Fatalf("compile the Rego tests: %v", err)
	}

	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool {
		if results[i].Package != results[j].Package {
			return results[i].Package < results[j].Package
		}
		return results[i].Name < results[j].Name
	})
	for _, r := range results {
		t.Run(strings.TrimPrefix(r.Package, "data.")+"."+r.Name, func(t *testing.T) {
			switch {
			case r.Error != nil:
				t.Errorf("%s: error: %v", r.Location, r.Error)
			case r.Fail:
				t.Errorf("%s: FAIL\n%s", r.Location, r.SubResults.String())
			}
		})
	}
	return len(results)
}

// loadModules parses every .rego file under dir, tests included.
func loadModules(t testing.TB, dir string) map[string]*ast.Module {
	t.Helper()
	modules := map[string]*ast.Module{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return err
		}
		modules[path] = m
		return nil
	})
	if err != nil {
		t.Fatalf("load Rego: %v", err)
	}
	return modules
}

// benchCases are the requests BenchmarkDecision measures, as the sidecar gets
// them: OPA's REST server hands the policy an ast.Value parsed from JSON, so
// the input is parsed once, outside the loop, and the figure is the policy's
// own cost.
var benchCases = []struct {
	name  string
	input string
	allow bool
}{
	// A fine-grained token that goes through every rule (lifetime, reach,
	// opt-in, access, approval) and is allowed.
	{"fine_grained_allowed", `{"credential": {"type": "pat", "token": "github_pat_bench"},
		"resource": {"owner": "octo-org", "repository": "app"}, "action": "write"}`, true},
	// The same request with a token whose grant is pending: denied (rule 19).
	{"fine_grained_pending", `{"credential": {"type": "pat", "token": "github_pat_pending"},
		"resource": {"owner": "octo-org", "repository": "app"}, "action": "write"}`, false},
	// A classic token with repo: allowed.
	{"classic_allowed", `{"credential": {"type": "pat", "token": "ghp_bench"},
		"resource": {"owner": "octo-org", "repository": "app"}, "action": "write", "permission": "issues"}`, true},
	// A read of a public repository: the public floor.
	{"public_read", `{"credential": {"type": "pat", "token": "github_pat_bench"},
		"resource": {"owner": "other-org", "repository": "site", "visibility": "public"}, "action": "read"}`, true},
}

// BenchmarkDecision measures data.pat.decision through a prepared query for
// each of benchCases, with the pat.* built-ins answering from Go maps, so the
// figure is the policy's own cost per request. It reports the median of the
// timed evaluations (p50-ns) besides the mean.
func BenchmarkDecision(b *testing.B) {
	for _, evaluator := range []string{"topdown", "irvm"} {
		b.Run("eval="+evaluator, func(b *testing.B) { benchDecision(b, evaluator) })
	}
}

func benchDecision(b *testing.B, evaluator string) {
	target := "rego"
	if evaluator == "irvm" {
		target = irvm.Name
	}
	pq := prepareBench(b, "data.pat.decision", rego.Target(target))
	ctx := context.Background()
	for _, tc := range benchCases {
		b.Run(tc.name, func(b *testing.B) {
			input := ast.MustParseTerm(tc.input).Value
			rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
			if err != nil || len(rs) != 1 {
				b.Fatalf("eval: %v %v", rs, err)
			}
			if allow := rs[0].Expressions[0].Value.(map[string]any)["allow"]; allow != tc.allow {
				b.Fatalf("allow is %v, want %v: %v", allow, tc.allow, rs[0].Expressions[0].Value)
			}
			durations := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := pq.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
					b.Fatal(err)
				}
				if len(durations) < cap(durations) {
					durations = append(durations, time.Since(start))
				}
			}
			b.StopTimer()
			// CPU time of the process per decision (GC included): other
			// processes on the shared machine inflate wall-clock figures, not this.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecisionMapInput is the allowed fine-grained request of
// BenchmarkDecision with the input given as a Go map, converted on every
// evaluation, as a Go caller of rego.EvalInput pays it.
func BenchmarkDecisionMapInput(b *testing.B) {
	pq := prepareBench(b, "data.pat.decision")
	input := map[string]any{
		"credential": map[string]any{"type": "pat", "token": "github_pat_bench"},
		"resource":   map[string]any{"owner": "octo-org", "repository": "app"},
		"action":     "write",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalInput(input)); err != nil {
			b.Fatal(err)
		}
	}
}

// prepareBench prepares query over the embedded policy (tests excluded), the
// benchmark settings and the mocked built-ins.
func prepareBench(b testing.TB, query string, extra ...func(*rego.Rego)) rego.PreparedEvalQuery {
	b.Helper()
	mods, err := Modules()
	if err != nil {
		b.Fatal(err)
	}
	settings := map[string]any{
		"enterprises":   map[string]any{"acme": map[string]any{"owners": []any{"erin"}}},
		"organizations": map[string]any{"octo-org": map[string]any{"enterprise": "acme", "fine_grained_max_lifetime_days": 90}},
	}
	// The settings as ast values, as the sidecar keeps them
	// (--optimize-store-for-read-speed): a read is not a conversion.
	store := inmem.NewFromObjectWithOpts(map[string]any{"pat": map[string]any{"settings": settings}},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(store)}
	for path, src := range mods {
		opts = append(opts, rego.Module(path, src))
	}
	opts = append(opts, benchBuiltins()...)
	opts = append(opts, extra...)
	pq, err := rego.New(opts...).PrepareForEval(irvm.WithStore(context.Background(), store))
	if err != nil {
		b.Fatal(err)
	}
	return pq
}

func benchBuiltins() []func(*rego.Rego) {
	obj := types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))
	now := time.Now().UnixNano()
	times := `"created_at_ns": ` + strconv.FormatInt(now-86400e9, 10) + `, "expires_at_ns": ` + strconv.FormatInt(now+30*86400e9, 10)
	fineGrained := func(id, user string) *ast.Term {
		return ast.MustParseTerm(`{"well_formed": true, "found": true, "kind": "fine_grained", "id": ` + id + `, "user": "` + user + `",
			"name": "ci", ` + times + `, "revoked": false, "scopes": set(), "resource_owner": "octo-org",
			"repository_selection": "selected", "repositories": {"app"}, "permissions": {"metadata": "read", "contents": "write"}}`)
	}
	tokens := map[string]*ast.Term{
		"github_pat_bench":   fineGrained("1", "bob"),
		"github_pat_pending": fineGrained("2", "bob"),
		"ghp_bench": ast.MustParseTerm(`{"well_formed": true, "found": true, "kind": "classic", "id": 3, "user": "bob",
			"name": "ci", ` + times + `, "revoked": false, "scopes": {"repo"}, "resource_owner": "",
			"repository_selection": "", "repositories": set(), "permissions": {}}`),
	}
	grants := map[string]*ast.Term{
		"1": ast.MustParseTerm(`{"id": 7, "state": "approved", "reason": "", "reviewer": "alice", "updated_at_ns": 0}`),
		"2": ast.MustParseTerm(`{"id": 8, "state": "pending", "reason": "release", "reviewer": null, "updated_at_ns": 0}`),
	}
	repo := ast.MustParseTerm(`{"owner": "octo-org", "name": "app", "visibility": "private"}`)
	return []func(*rego.Rego){
		rego.Function1(&rego.Function{Name: "pat.token", Decl: types.NewFunction(types.Args(types.S), obj), Nondeterministic: true},
			func(_ rego.BuiltinContext, raw *ast.Term) (*ast.Term, error) {
				if s, ok := raw.Value.(ast.String); ok {
					return tokens[string(s)], nil
				}
				return nil, nil
			}),
		rego.Function2(&rego.Function{Name: "pat.grant", Decl: types.NewFunction(types.Args(types.N, types.S), obj), Nondeterministic: true},
			func(_ rego.BuiltinContext, id *ast.Term, _ *ast.Term) (*ast.Term, error) {
				return grants[id.String()], nil
			}),
		rego.Function2(&rego.Function{Name: "pat.org_role", Decl: types.NewFunction(types.Args(types.S, types.S), types.S), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) {
				return ast.StringTerm("member"), nil
			}),
		rego.Function1(&rego.Function{Name: "pat.user", Decl: types.NewFunction(types.Args(types.S), obj), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) { return nil, nil }),
		rego.Function2(&rego.Function{Name: "pat.repository", Decl: types.NewFunction(types.Args(types.S, types.S), obj), Nondeterministic: true},
			func(_ rego.BuiltinContext, _ *ast.Term, name *ast.Term) (*ast.Term, error) {
				if name.Equal(ast.StringTerm("app")) {
					return repo, nil
				}
				return nil, nil
			}),
		// The gate's policy and the decision-log mask, compiled with the
		// rest, call it.
		rego.FunctionDyn(&rego.Function{Name: "pat.token_prefixes", Decl: types.NewFunction(nil, types.NewSet(types.S)), Nondeterministic: true},
			func(rego.BuiltinContext, []*ast.Term) (*ast.Term, error) {
				return ast.SetTerm(ast.StringTerm("ghp_"), ast.StringTerm("github_pat_")), nil
			}),
	}
}

// BenchmarkBaseline is the cost of a one-expression query on this machine, to
// read BenchmarkDecision against.
func BenchmarkBaseline(b *testing.B) {
	pq, err := rego.New(rego.Query(`input.action == "write"`)).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	input := map[string]any{
		"credential": map[string]any{"type": "pat", "token": "github_pat_bench"},
		"resource":   map[string]any{"owner": "octo-org", "repository": "app"},
		"action":     "write",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalInput(input)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecisionProfile prints OPA's expression profile of each benchmark
// request, the expressions evaluated most often first, to see which rules
// cost. It runs only with OPA_PAT_PROFILE=1:
//
//	OPA_PAT_PROFILE=1 go test ./rego/ -run TestDecisionProfile -v
func TestDecisionProfile(t *testing.T) {
	if os.Getenv("OPA_PAT_PROFILE") == "" {
		t.Skip("set OPA_PAT_PROFILE=1 to print the profile")
	}
	for _, tc := range benchCases {
		t.Run(tc.name, func(t *testing.T) {
			prof := profiler.New()
			pq := prepareBench(t, "data.pat.decision", rego.QueryTracer(prof))
			input := ast.MustParseTerm(tc.input).Value
			if _, err := pq.Eval(t.Context(), rego.EvalParsedInput(input), rego.EvalQueryTracer(prof)); err != nil {
				t.Fatal(err)
			}
			evals := 0
			for _, s := range prof.ReportTopNResults(-1, []string{"num_eval"}) {
				evals += s.NumEval
			}
			t.Logf("%d expression evaluations", evals)
			for _, s := range prof.ReportTopNResults(200, []string{"total_time_ns"}) {
				t.Logf("%4d %8d ns  %s", s.NumEval, s.ExprTimeNs, s.Location)
			}
		})
	}
}
