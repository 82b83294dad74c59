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

	"github.com/open-policy-agent/opa/v1/ast"
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
	type pair struct{ topdown, irvm rego.PreparedEvalQuery }
	queries := map[string]pair{}
	for _, q := range []string{"data.pat.decision", "data.pat.envoy.decision", "data.pat.admin.decision"} {
		queries[q] = pair{prepare(q, "rego"), prepare(q, irvm.Name)}
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

	compare := func(query string, input any) {
		t.Helper()
		in, err := ast.InterfaceToValue(input)
		if err != nil {
			t.Fatal(err)
		}
		q := queries[query]
		want := evalAt(t, q.topdown, in)
		got := evalAt(t, q.irvm, in)
		if (want == nil) != (got == nil) || (want != nil && ast.Compare(want, got) != 0) {
			t.Fatalf("%s disagrees on input %v:\n topdown: %v\n irvm:    %v", query, in, want, got)
		}
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

func evalAt(t *testing.T, pq rego.PreparedEvalQuery, input ast.Value) ast.Value {
	t.Helper()
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input), rego.EvalTime(time.Unix(1_780_000_000, 0)))
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	if len(rs) == 0 {
		return nil
	}
	v, err := ast.InterfaceToValue(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
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
		"parsed_query": query,
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
