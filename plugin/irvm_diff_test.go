package plugin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/opa-pat/opa-pat/examples"
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/opa-pat/opa-pat/plugin/store"
	patrego "github.com/opa-pat/opa-pat/rego"
)

// TestIRVMAgreesWithTopdown holds irvm to OPA's own evaluator on the real
// policy, the real plugin and the example world: random settings (every
// field of every enterprise and organization drawn from its allowed values,
// or left out) and random requests (every token of the world, malformed and
// unknown ones, every owner, repository, visibility, action and permission,
// well formed or not), decided by both; the decisions must be equal, field
// for field. The gate's entrypoint (data.pat.envoy.decision) gets random
// HTTP requests the same way.
func TestIRVMAgreesWithTopdown(t *testing.T) {
	ctx := context.Background()
	w := newDiffWorld(t)
	m, queries, g := w.manager, w.queries, w.gen

	compare := func(query string, input any) {
		t.Helper()
		in, err := ast.InterfaceToValue(input)
		if err != nil {
			t.Fatal(err)
		}
		w.compare(t, query, in)
	}

	const settingsRounds, requestsPerRound = 40, 150
	n := 0
	for range settingsRounds {
		settings := g.settings()
		if err := storage.WriteOne(ctx, m.Store, storage.AddOp, storage.MustParsePath("/pat"),
			map[string]any{"settings": settings}); err != nil {
			t.Fatal(err)
		}
		for range requestsPerRound {
			compare("data.pat.decision", g.request())
			compare("data.pat.envoy.decision", g.envoyRequest())
			compare("data.pat.admin.decision", g.adminRequest())
			n += 3
		}
	}
	t.Logf("%d decisions agree", n)

	// Concurrently: the machines are pooled and the folded constants
	// shared, so goroutines deciding at once must still agree (go test
	// -race checks the sharing).
	type job struct {
		query string
		in    ast.Value
		want  ast.Value
	}
	var jobs []job
	for range 400 {
		for _, q := range []string{"data.pat.decision", "data.pat.envoy.decision"} {
			var raw any = g.request()
			if q == "data.pat.envoy.decision" {
				raw = g.envoyRequest()
			}
			in, err := ast.InterfaceToValue(raw)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, job{q, in, evalAt(t, queries[q].topdown, in)})
		}
	}
	errs := make(chan string, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(jobs); i += 4 {
				j := jobs[i]
				rs, err := queries[j.query].irvm.Eval(ctx, rego.EvalParsedInput(j.in), rego.EvalTime(time.Unix(1_780_000_000, 0)))
				var got ast.Value
				if err == nil && len(rs) > 0 {
					got, err = ast.InterfaceToValue(rs[0].Expressions[0].Value)
				}
				if err != nil || (got == nil) != (j.want == nil) || (got != nil && ast.Compare(got, j.want) != 0) {
					errs <- fmt.Sprintf("%s on %v: irvm %v (%v), topdown %v", j.query, j.in, got, err, j.want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// diffWorld is the example world in a store, the plugin over it, and the
// policy's entrypoints prepared for both evaluators.
type diffWorld struct {
	manager *plugins.Manager
	queries map[string]evaluators
	gen     *gen
}

type evaluators struct{ topdown, irvm rego.PreparedEvalQuery }

func newDiffWorld(t testing.TB) *diffWorld {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pat.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := store.ParseDump(bytes.NewReader(examples.Fixtures))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, dump, "test"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	m, _ := startPlugin(t, path, map[string]any{}) // settings: written per round below

	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	prepare := func(query, target string) rego.PreparedEvalQuery {
		opts := []func(*rego.Rego){rego.Query(query), rego.Store(m.Store), rego.Target(target)}
		for path, src := range mods {
			opts = append(opts, rego.Module(path, src))
		}
		pq, err := rego.New(opts...).PrepareForEval(irvm.WithStore(ctx, m.Store))
		if err != nil {
			t.Fatalf("prepare %s for %s: %v", query, target, err)
		}
		return pq
	}
	queries := map[string]evaluators{}
	for _, q := range []string{"data.pat.decision", "data.pat.envoy.decision", "data.pat.admin.decision"} {
		queries[q] = evaluators{prepare(q, "rego"), prepare(q, irvm.Name)}
	}

	var fixtures struct {
		Tokens []struct {
			Raw string `json:"token"`
		} `json:"tokens"`
		Users []struct {
			Login string `json:"login"`
		} `json:"users"`
		Repositories []struct {
			Owner string `json:"owner"`
			Name  string `json:"name"`
		} `json:"repositories"`
	}
	if err := json.Unmarshal(examples.Fixtures, &fixtures); err != nil {
		t.Fatal(err)
	}
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	for _, tk := range fixtures.Tokens {
		g.tokens = append(g.tokens, tk.Raw)
	}
	g.owners = []any{"octo-org", "acme-labs", "indie-org", "OCTO-ORG", "unknown-org", "", 5, nil}
	for _, u := range fixtures.Users {
		g.owners = append(g.owners, u.Login)
	}
	g.repos = []any{"unknown-repo", "", nil, 7, "APP"}
	for _, r := range fixtures.Repositories {
		g.repos = append(g.repos, r.Name)
		g.paths = append(g.paths, r.Owner+"/"+r.Name)
	}

	return &diffWorld{manager: m, queries: queries, gen: g}
}

// compare decides input with both evaluators; the decisions must be equal,
// and so must whether the evaluation failed.
func (w *diffWorld) compare(t testing.TB, query string, in ast.Value) {
	t.Helper()
	q := w.queries[query]
	want, wantErr := evalErr(q.topdown, in)
	got, gotErr := evalErr(q.irvm, in)
	if (wantErr == nil) != (gotErr == nil) || (want == nil) != (got == nil) || (want != nil && ast.Compare(want, got) != 0) {
		t.Fatalf("%s disagrees on input %v:\n topdown: %v (%v)\n irvm:    %v (%v)", query, in, want, wantErr, got, gotErr)
	}
}

// FuzzIRVMAgreesOnEnvoy decides the gate's entrypoint with both evaluators
// for any method, request target and body, with each credential of the
// example world in each way the gate reads one: the route table, the
// lenient readings and the refusals meet paths that no table lists.
func FuzzIRVMAgreesOnEnvoy(f *testing.F) {
	w := newDiffWorld(f)
	var settings any
	if err := json.Unmarshal(examples.Settings, &settings); err != nil {
		f.Fatal(err)
	}
	if err := storage.WriteOne(context.Background(), w.manager.Store, storage.AddOp, storage.MustParsePath("/pat"),
		map[string]any{"settings": settings}); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ method, target, body string }{
		{"GET", "/repos/octo-org/app/contents/README.md", ""},
		{"PUT", "/api/v3/repos/octo-org/app/contents/.github/workflows/ci.yml", `{"message": "x"}`},
		{"GET", "/repos/Octo-Org/App/pulls/1/merge;x", ""},
		{"POST", "/repos/octo-org/app/issues?_method=DELETE", `{"title": "t"}`},
		{"GET", "/octo-org/app.git/info/refs?service=git-upload-pack", ""},
		{"POST", "/octo-org/app.git/info/lfs/objects/batch", `{"operation": "download"}`},
		{"DELETE", "/orgs/acme-labs/hooks/1", ""},
		{"GET", "/repos/octo-org/app/contents/a%2F..%2Fb", ""},
	} {
		for tok := range uint8(3) {
			f.Add(seed.method, seed.target, seed.body, tok, tok)
		}
	}
	f.Fuzz(func(t *testing.T, method, target, body string, tok, scheme uint8) {
		if !utf8.ValidString(method + target + body) {
			return // the gate refuses such a request before the policy
		}
		in, err := ast.InterfaceToValue(envoyInput(w.gen, method, target, body, tok, scheme))
		if err != nil {
			return
		}
		w.compare(t, "data.pat.envoy.decision", in)
	})
}

// envoyInput is the gate's input for a request: the path's segments
// decoded, the query parsed, a JSON object body parsed, and a credential of
// the world (tok) in one of the ways the gate reads it (scheme).
func envoyInput(g *gen, method, target, body string, tok, scheme uint8) map[string]any {
	headers := map[string]any{}
	raw := g.tokens[int(tok)%len(g.tokens)]
	switch scheme % 4 {
	case 0:
		headers["authorization"] = "Bearer " + raw
	case 1:
		headers["authorization"] = "token " + raw
	case 2:
		headers["authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+raw))
	}
	if body != "" {
		headers["content-type"] = "application/json"
	}
	pathOnly, rawQuery, _ := strings.Cut(target, "?")
	var parsed []any
	for _, seg := range strings.Split(strings.TrimPrefix(pathOnly, "/"), "/") {
		if dec, err := url.PathUnescape(seg); err == nil && utf8.ValidString(dec) {
			seg = dec
		}
		parsed = append(parsed, seg)
	}
	in := map[string]any{
		"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
			"method": method, "path": target, "headers": headers, "host": "git.example.com", "body": body,
		}}},
		"parsed_path":  parsed,
		"parsed_query": parsedQuery(rawQuery),
		"version":      map[string]any{"encoding": "protojson", "ext_authz": "v3"},
	}
	var obj map[string]any
	if json.Unmarshal([]byte(body), &obj) == nil && obj != nil {
		in["parsed_body"] = obj
	}
	return in
}

func evalAt(t testing.TB, pq rego.PreparedEvalQuery, input ast.Value) ast.Value {
	t.Helper()
	v, err := evalErr(pq, input)
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	return v
}

func evalErr(pq rego.PreparedEvalQuery, input ast.Value) (ast.Value, error) {
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input), rego.EvalTime(time.Unix(1_780_000_000, 0)))
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return ast.InterfaceToValue(rs[0].Expressions[0].Value)
}

// gen draws settings and requests.
type gen struct {
	r             *rand.Rand
	tokens, paths []string
	owners, repos []any
}

func (g *gen) pick(xs ...any) any { return xs[g.r.IntN(len(xs))] }

// maybe returns a value, or absent (nil is then "leave the key out").
func (g *gen) field(m map[string]any, key string, values ...any) {
	if g.r.IntN(4) == 0 {
		return
	}
	m[key] = g.pick(values...)
}

func (g *gen) settings() map[string]any {
	policy := func(m map[string]any, enterprise bool) {
		access := []any{"allow", "restrict"}
		approval := []any{"require", "disable"}
		if enterprise {
			access = append(access, "org_decides")
			approval = append(approval, "org_decides")
		}
		g.field(m, "classic_access", access...)
		g.field(m, "fine_grained_access", access...)
		g.field(m, "fine_grained_approval", approval...)
		g.field(m, "fine_grained_opt_in", true, false)
		g.field(m, "classic_max_lifetime_days", nil, 1, 30, 90, 366)
		g.field(m, "fine_grained_max_lifetime_days", nil, 1, 30, 90, 366)
		g.field(m, "exempt_administrators", true, false)
	}
	acme := map[string]any{}
	g.field(acme, "owners", []any{"alice"}, []any{"alice", "bob"}, []any{})
	policy(acme, true)
	orgs := map[string]any{}
	for _, name := range []string{"octo-org", "acme-labs", "indie-org"} {
		if g.r.IntN(6) == 0 {
			continue
		}
		o := map[string]any{}
		if name != "indie-org" || g.r.IntN(3) == 0 {
			g.field(o, "enterprise", "acme", "acme", "other-enterprise")
		}
		policy(o, false)
		orgs[name] = o
	}
	return map[string]any{"enterprises": map[string]any{"acme": acme}, "organizations": orgs}
}

func (g *gen) token() any {
	switch g.r.IntN(10) {
	case 0:
		return g.pick("", nil, 42, "ghp_short", "github_pat_"+strings.Repeat("A", 82))
	case 1:
		t := g.tokens[g.r.IntN(len(g.tokens))]
		return t[:len(t)-1] + "Z" // a checksum that (nearly always) fails
	default:
		return g.tokens[g.r.IntN(len(g.tokens))]
	}
}

// request draws a decision input: mostly well formed, so that the rules
// beyond the input checks decide most of them; one in ten breaks something.
func (g *gen) request() map[string]any {
	odd := func() bool { return g.r.IntN(10) == 0 }
	cred := map[string]any{"type": "pat", "token": g.token()}
	if odd() {
		g.field(cred, "type", "ssh_key", "password", nil)
	}
	if odd() {
		delete(cred, "token")
	}
	resource := map[string]any{"owner": g.pick("octo-org", "acme-labs", "indie-org")}
	if odd() {
		resource["owner"] = g.owners[g.r.IntN(len(g.owners))]
	}
	if g.r.IntN(5) != 0 {
		resource["repository"] = g.repos[5+g.r.IntN(len(g.repos)-5)]
		if odd() {
			resource["repository"] = g.repos[g.r.IntN(len(g.repos))]
		}
	}
	if g.r.IntN(3) == 0 {
		resource["visibility"] = g.pick("public", "internal", "private")
		if odd() {
			resource["visibility"] = g.pick(nil, "secret")
		}
	}
	in := map[string]any{"credential": cred, "resource": resource, "action": g.pick("read", "write")}
	if odd() {
		g.field(in, "action", "admin", nil, 1)
	}
	g.field(in, "permission", "contents", "issues", "metadata", "pull_requests", "workflows",
		"administration", "members", "organization_administration", "actions",
		"gpg_keys", "emails", "email_addresses", "profile", "starring", "user_models")
	if odd() {
		in["permission"] = g.pick("X!", 3, nil)
	}
	return in
}

func (g *gen) envoyRequest() map[string]any {
	repo := g.paths[g.r.IntN(len(g.paths))]
	target := g.pick(
		"/repos/"+repo, "/repos/"+repo+"/contents/README.md", "/api/v3/repos/"+repo+"/issues",
		"/repos/"+repo+"/pulls/1", "/repos/"+repo+"/actions/runs", "/repos/"+repo+"/hooks",
		"/orgs/octo-org/members", "/orgs/acme-labs", "/"+repo+".git/info/refs?service=git-upload-pack",
		"/"+repo+"/info/refs?service=git-receive-pack", "/"+repo+".git/git-upload-pack",
		"/"+repo+".git/git-receive-pack", "/unknown/path", "/repos/"+repo+"/contents/a%2Fb",
		// Routes with more than one requirement, or classic scopes of their own.
		"/repos/"+repo+"/contents/.github/workflows/ci.yml", "/repos/"+repo+"/pages",
		"/repos/"+repo+"/issues/3/comments", "/repos/"+repo+"/labels", "/orgs/octo-org/teams/devs/repos/"+repo,
		"/orgs/octo-org/audit-log", "/orgs/acme-labs/repos", "/repos/"+repo+"/tags/protection",
		"/orgs/octo-org/copilot/metrics", "/orgs/octo-org/team/devs/copilot/metrics",
		"/orgs/octo-org/custom-repository-roles", "/orgs/octo-org/teams/devs/external-groups",
	).(string)
	headers := map[string]any{}
	if tok, ok := g.token().(string); ok && g.r.IntN(8) != 0 {
		headers["authorization"] = g.pick(
			"Bearer "+tok, "token "+tok, "bearer "+tok,
			"Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+tok)),
			"Basic "+base64.StdEncoding.EncodeToString([]byte(tok+":")),
			"Digest abc",
		)
	}
	if g.r.IntN(5) == 0 {
		headers["x-pat-user"] = "mallory"
	}
	pathOnly, rawQuery, _ := strings.Cut(target, "?")
	var parsed []any
	for _, seg := range strings.Split(strings.TrimPrefix(pathOnly, "/"), "/") {
		parsed = append(parsed, seg)
	}
	return map[string]any{
		"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
			"method": g.pick("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"), "path": target,
			"headers": headers, "host": "git.example.com",
		}}},
		"parsed_path":  parsed,
		"parsed_query": parsedQuery(rawQuery),
		"parsed_body":  g.pick(nil, map[string]any{"name": "x"}, map[string]any{"private": true}, map[string]any{"visibility": "internal"}, "text"),
		"version":      map[string]any{"encoding": "protojson", "ext_authz": "v3"},
	}
}

// adminRequest is a random call of the admin API's policy: an operation, an
// organization and a caller with random scopes, permissions, lifetime and
// grant state.
func (g *gen) adminRequest() map[string]any {
	day := int64(86_400_000_000_000)
	created := int64(1_770_000_000_000_000_000)
	caller := map[string]any{
		"token_id": 1, "user": g.pick("alice", "bob", "erin", "mallory"),
		"kind":           g.pick("classic", "fine_grained", "oauth"),
		"scopes":         g.pick([]any{}, []any{"admin:org"}, []any{"read:audit_log", "user"}, []any{"repo"}),
		"resource_owner": g.pick("", "octo-org", "acme-labs", "alice"),
		"permissions": g.pick(map[string]any{}, map[string]any{"personal_access_tokens": "write"},
			map[string]any{"organization_personal_access_token_requests": "read", "organization_administration": "read"}),
		"created_at_ns": created, "expires_at_ns": g.pick(nil, created+30*day, created+400*day),
	}
	if g.r.IntN(3) != 0 {
		caller["grant_state"] = g.pick(nil, "approved", "pending", "denied", "revoked")
	}
	in := map[string]any{"operation": g.pick("requests.list", "requests.review", "tokens.revoke", "audit.list", "user.tokens.list", "nope"), "caller": caller}
	if g.r.IntN(6) != 0 {
		in["org"] = g.pick("octo-org", "acme-labs", "indie-org", "unknown-org")
	}
	if g.r.IntN(2) == 0 {
		in["target_user"] = g.pick("alice", "bob")
	}
	return in
}

// parsedQuery is a query's parameters as the gate's input gives them: each
// name with the list of its values.
func parsedQuery(rawQuery string) map[string]any {
	query := map[string]any{}
	if vals, err := url.ParseQuery(rawQuery); err == nil {
		for k, vs := range vals {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			query[k] = list
		}
	}
	return query
}
