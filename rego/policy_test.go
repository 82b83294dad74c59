package rego

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
)

// TestRego runs every Rego test under rego/ in-process, the way the stock
// `opa test --capabilities rego/capabilities.json rego/` run does: only .rego
// files are loaded, and the pat.* built-ins are known from the capabilities
// file alone, so the tests must mock them. It fails when a Rego test fails or
// errors, and when no Rego test ran.
func TestRego(t *testing.T) {
	modules := loadModules(t, ".")
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
	if len(results) == 0 {
		t.Fatal("no Rego test ran")
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

// BenchmarkDecision measures data.pat.decision for a fine-grained token that
// goes through every rule (lifetime, reach, opt-in, access, approval) and is
// allowed. The pat.* built-ins answer from Go maps, so the figure is the
// policy's own cost per request.
func BenchmarkDecision(b *testing.B) {
	mods, err := Modules()
	if err != nil {
		b.Fatal(err)
	}
	settings := map[string]any{
		"enterprises":   map[string]any{"acme": map[string]any{"owners": []any{"erin"}}},
		"organizations": map[string]any{"octo-org": map[string]any{"enterprise": "acme", "fine_grained_max_lifetime_days": 90}},
	}
	opts := []func(*rego.Rego){
		rego.Query("data.pat.decision"),
		rego.Store(inmem.NewFromObject(map[string]any{"pat": map[string]any{"settings": settings}})),
	}
	for path, src := range mods {
		opts = append(opts, rego.Module(path, src))
	}
	opts = append(opts, benchBuiltins()...)
	pq, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	input := map[string]any{
		"credential": map[string]any{"type": "pat", "token": "github_pat_bench"},
		"resource":   map[string]any{"owner": "octo-org", "repository": "app"},
		"action":     "write",
	}
	ctx := context.Background()
	rs, err := pq.Eval(ctx, rego.EvalInput(input))
	if err != nil || len(rs) != 1 {
		b.Fatalf("eval: %v %v", rs, err)
	}
	if allow := rs[0].Expressions[0].Value.(map[string]any)["allow"]; allow != true {
		b.Fatalf("the benchmark request is not allowed: %v", rs[0].Expressions[0].Value)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalInput(input)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBuiltins() []func(*rego.Rego) {
	obj := types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))
	now := time.Now().UnixNano()
	token := ast.MustParseTerm(`{"well_formed": true, "found": true, "kind": "fine_grained", "id": 1, "user": "bob",
		"name": "ci", "created_at_ns": ` + strconv.FormatInt(now-86400e9, 10) + `, "expires_at_ns": ` + strconv.FormatInt(now+30*86400e9, 10) + `,
		"revoked": false, "scopes": set(), "resource_owner": "octo-org", "repository_selection": "selected",
		"repositories": {"app"}, "permissions": {"metadata": "read", "contents": "write"}}`)
	grant := ast.MustParseTerm(`{"id": 7, "state": "approved", "reason": "", "reviewer": "alice", "updated_at_ns": 0}`)
	repo := ast.MustParseTerm(`{"owner": "octo-org", "name": "app", "visibility": "private"}`)
	return []func(*rego.Rego){
		rego.Function1(&rego.Function{Name: "pat.token", Decl: types.NewFunction(types.Args(types.S), obj), Nondeterministic: true},
			func(_ rego.BuiltinContext, raw *ast.Term) (*ast.Term, error) {
				if raw.Equal(ast.StringTerm("github_pat_bench")) {
					return token, nil
				}
				return nil, nil
			}),
		rego.Function2(&rego.Function{Name: "pat.grant", Decl: types.NewFunction(types.Args(types.N, types.S), obj), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) { return grant, nil }),
		rego.Function2(&rego.Function{Name: "pat.org_role", Decl: types.NewFunction(types.Args(types.S, types.S), types.S), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) {
				return ast.StringTerm("member"), nil
			}),
		rego.Function1(&rego.Function{Name: "pat.user", Decl: types.NewFunction(types.Args(types.S), obj), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) { return nil, nil }),
		rego.Function2(&rego.Function{Name: "pat.repository", Decl: types.NewFunction(types.Args(types.S, types.S), obj), Nondeterministic: true},
			func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) { return repo, nil }),
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
