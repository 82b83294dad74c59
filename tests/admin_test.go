package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// admWorld is the admin API's world: octo-org (acme enterprise, approval
// required) owned by alice, with bob and carol as members; mallory owns
// evil-org; erin owns the acme enterprise (settings). The emu enterprise,
// of no organization, holds its managed users' own tokens to 30 days and
// exempts its owner ema.
type admWorld struct {
	bin, store, api, admin string
	raw                    map[string]string // token name -> raw token
	mu                     sync.Mutex
	output                 bytes.Buffer
}

func (w *admWorld) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.output.Write(p)
}

const admSettings = `{
  "enterprises": {"acme": {"owners": ["erin"]},
                  "emu": {"owners": ["ema"], "fine_grained_max_lifetime_days": 30, "exempt_administrators": true}},
  "organizations": {"octo-org": {"enterprise": "acme", "fine_grained_opt_in": true},
                    "locked-org": {"enterprise": "acme", "classic_access": "restrict"},
                    "acme-labs": {"fine_grained_approval": "disable"}}
}`

func admGenerate(t *testing.T, kind string) string {
	t.Helper()
	raw, err := token.Generate(kind, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// startAdmin imports the world and starts `opa-pat run --server` with the
// admin API and a signed bundle of rego/ with the settings above.
func startAdmin(t *testing.T) *admWorld {
	t.Helper()
	w := &admWorld{bin: binary(t), api: freeAddr(t), admin: freeAddr(t), raw: map[string]string{}}
	dir := t.TempDir()
	w.store = filepath.Join(dir, "pat.db")
	created := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	expires := time.Now().UTC().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	type tok struct{ name, kind, user, scopes, owner, perms string }
	tokens := []tok{
		{"alice-admin", "classic", "alice", `["admin:org"]`, "", ""},
		{"alice-fg", "fine_grained", "alice", "", "octo-org", `{"personal_access_token_requests": "write", "personal_access_tokens": "write"}`},
		{"erin-admin", "classic", "erin", `["admin:org"]`, "", ""},
		{"bob-admin", "classic", "bob", `["admin:org"]`, "", ""},
		// repo too: a token creates only tokens that reach what it reaches.
		{"bob-user", "classic", "bob", `["repo", "user"]`, "", ""},
		{"mallory-admin", "classic", "mallory", `["admin:org"]`, "", ""},
		{"ci1", "fine_grained", "bob", "", "octo-org", `{"contents": "write"}`},
		{"ci2", "fine_grained", "bob", "", "octo-org", `{"contents": "write", "issues": "read"}`},
		{"ci3", "fine_grained", "bob", "", "octo-org", `{"contents": "read"}`},
		{"carol-ci", "fine_grained", "carol", "", "octo-org", `{"contents": "write"}`},
	}
	var recs, grants []string
	for _, tk := range tokens {
		raw := admGenerate(t, tk.kind)
		w.raw[tk.name] = raw
		rec := fmt.Sprintf(`{"token": %q, "name": %q, "kind": %q, "user": %q, "created_at": %q, "expires_at": %q, "revoked": false`, raw, tk.name, tk.kind, tk.user, created, expires)
		if tk.kind == "classic" {
			rec += `, "scopes": ` + tk.scopes + `}`
		} else {
			rec += fmt.Sprintf(`, "resource_owner": %q, "repository_selection": "selected", "repositories": ["app"], "permissions": %s}`, tk.owner, tk.perms)
			if tk.user != "alice" {
				grants = append(grants, fmt.Sprintf(`{"token_name": %q, "user": %q, "org": "octo-org", "state": "pending", "reason": "need it for %s"}`, tk.name, tk.user, tk.name))
			} else {
				grants = append(grants, fmt.Sprintf(`{"token_name": %q, "user": %q, "org": "octo-org", "state": "approved"}`, tk.name, tk.user))
			}
		}
		recs = append(recs, rec)
	}
	world := `{
  "users": [{"login": "alice", "managed_by": null}, {"login": "bob", "managed_by": null}, {"login": "carol", "managed_by": null}, {"login": "erin", "managed_by": null}, {"login": "mallory", "managed_by": null}],
  "memberships": [
    {"user": "alice", "org": "octo-org", "role": "owner"},
    {"user": "bob", "org": "octo-org", "role": "member"},
    {"user": "carol", "org": "octo-org", "role": "member"},
    {"user": "mallory", "org": "evil-org", "role": "owner"},
    {"user": "alice", "org": "locked-org", "role": "owner"}
  ],
  "repositories": [
    {"owner": "octo-org", "name": "app", "visibility": "private"},
    {"owner": "octo-org", "name": "docs", "visibility": "public"}
  ],
  "tokens": [` + strings.Join(recs, ",\n") + `],
  "grants": [` + strings.Join(grants, ",\n") + `]
}`
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, dir, "world.json", world))
	config := writeFile(t, dir, "config.yaml", `
plugins:
  pat:
    store: {path: "`+w.store+`"}
    admin: {addr: "`+w.admin+`"}
`)
	// The policy and settings come as a deployment gets them: a bundle of rego/ signed with
	// opa-pat's keys, verified by the sidecar.
	keys := filepath.Join(dir, "k")
	runCLI(t, w.bin, []string{"COSIGN_PASSWORD=pw"}, "keys", "generate", "--output-prefix", keys)
	bundle := filepath.Join(dir, "bundle.tar.gz")
	runCLI(t, w.bin, []string{"COSIGN_PASSWORD=pw"}, "bundle", "build", "--settings", writeFile(t, dir, "settings.json", admSettings),
		"--key", keys+".key", "--output", bundle, filepath.Join(repoRoot(), "rego"))
	cmd := exec.Command(w.bin, "run", "--server", "--addr", w.api, "--config-file", config,
		"--verification-key", keys+".pub", "--signing-alg", "ES256", "--bundle", bundle)
	cmd.Stdout, cmd.Stderr = w, w
	startProcess(t, cmd, 10*time.Second, func() string { w.mu.Lock(); defer w.mu.Unlock(); return w.output.String() })
	poll(t, 30*time.Second, "the admin API to serve", func() bool {
		resp, err := http.Get("http://" + w.admin + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	})
	return w
}

type admResponse struct {
	status int
	header http.Header
	body   string
}

// call sends a request to the admin API as the holder of token (by name;
// "" sends no credential).
func (w *admWorld) call(t *testing.T, method, path, as string, body any) admResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	if as == "" {
		return w.send(t, method, path, rd)
	}
	return w.send(t, method, path, rd, as)
}

// send sends body to the admin API with one Authorization header per token
// in as, each a token's name or a raw token.
func (w *admWorld) send(t *testing.T, method, path string, body io.Reader, as ...string) admResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+w.admin+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range as {
		raw, ok := w.raw[name]
		if !ok {
			raw = name
		}
		req.Header.Add("Authorization", "Bearer "+raw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return admResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// allowed asks OPA's REST API for data.pat.decision: a write to octo-org/app
// with the named token.
func (w *admWorld) allowed(t *testing.T, name string) bool {
	t.Helper()
	allow, _ := w.decide(t, name)
	return allow
}

// decide is allowed's decision: whether it allows, and the token's id.
func (w *admWorld) decide(t *testing.T, name string) (bool, int64) {
	t.Helper()
	in := map[string]any{"input": map[string]any{
		"credential": map[string]any{"type": "pat", "token": w.raw[name]},
		"resource":   map[string]any{"owner": "octo-org", "repository": "app", "visibility": "private"},
		"action":     "write", "permission": "contents",
	}}
	b, _ := json.Marshal(in)
	resp, err := http.Post("http://"+w.api+"/v1/data/pat/decision", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Allow   bool  `json:"allow"`
			TokenID int64 `json:"token_id"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Result.Allow, out.Result.TokenID
}

// flips waits at most a second for the decision on a token to become want.
func (w *admWorld) flips(t *testing.T, name string, want bool) {
	t.Helper()
	took := poll(t, time.Second, fmt.Sprintf("the decision for %s to become allow=%v", name, want), func() bool { return w.allowed(t, name) == want })
	t.Logf("decision for %s became allow=%v after %s", name, want, took.Round(time.Millisecond))
}

type admItem struct {
	ID        int64  `json:"id"`
	TokenID   int64  `json:"token_id"`
	TokenName string `json:"token_name"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Owner     struct {
		Login string `json:"login"`
	} `json:"owner"`
}

func admItems(t *testing.T, r admResponse) []admItem {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var out []admItem
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return out
}

func admNames(items []admItem) string {
	var names []string
	for _, it := range items {
		names = append(names, it.TokenName)
	}
	return strings.Join(names, ",")
}

func admExpect(t *testing.T, r admResponse, status int, body string) {
	t.Helper()
	if r.status != status || (body != "" && strings.TrimSpace(r.body) != body) {
		t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, status, body)
	}
}

const (
	admDocs    = "https://docs.github.com/rest/orgs/personal-access-tokens"
	admList    = admDocs + "#list-requests-to-access-organization-resources-with-fine-grained-personal-access-tokens"
	admBulk    = admDocs + "#review-requests-to-access-organization-resources-with-fine-grained-personal-access-tokens"
	admMustOwn = "Must be an owner of the octo-org organization or of its enterprise to manage its fine-grained personal access tokens"
)

func TestAdminAPI(t *testing.T) {
	w := startAdmin(t)
	const reqs = "/orgs/octo-org/personal-access-token-requests"

	t.Run("authentication and authorization", func(t *testing.T) {
		for _, tc := range []struct {
			note, method, path, as string
			status                 int
			body                   string
		}{
			{note: "no token", method: "GET", path: reqs, status: 401,
				body: `{"message":"Requires authentication","documentation_url":"` + admList + `"}`},
			{note: "garbage token", method: "GET", path: reqs, as: "ghp_nope", status: 401,
				body: `{"message":"Bad credentials","documentation_url":"` + admList + `"}`},
			{note: "well-formed unknown token", method: "GET", path: reqs, as: admGenerate(t, "classic"), status: 401,
				body: `{"message":"Bad credentials","documentation_url":"` + admList + `"}`},
			{note: "member", method: "GET", path: reqs, as: "bob-admin", status: 403,
				body: `{"message":"` + admMustOwn + `","documentation_url":"` + admList + `"}`},
			{note: "outsider", method: "GET", path: reqs, as: "mallory-admin", status: 403,
				body: `{"message":"` + admMustOwn + `","documentation_url":"` + admList + `"}`},
			{note: "member reviews", method: "POST", path: reqs, as: "bob-admin", status: 403,
				body: `{"message":"` + admMustOwn + `","documentation_url":"` + admBulk + `"}`},
			{note: "owner without admin:org", method: "GET", path: reqs, as: "bob-user", status: 403},
			{note: "unknown org", method: "GET", path: "/orgs/no-such-org/personal-access-token-requests", as: "alice-admin", status: 404,
				body: `{"message":"Not Found","documentation_url":"` + admList + `"}`},
			{note: "owner", method: "GET", path: reqs, as: "alice-admin", status: 200},
			{note: "owner, fine-grained", method: "GET", path: reqs, as: "alice-fg", status: 200},
			{note: "enterprise owner", method: "GET", path: reqs, as: "erin-admin", status: 200},
			// The organization's own PAT policies hold the caller's token too.
			{note: "owner, classic forbidden by the organization", method: "GET", path: "/orgs/locked-org/personal-access-token-requests", as: "alice-admin", status: 403,
				body: `{"message":"locked-org forbids access via a personal access token (classic): the policy is set by the locked-org organization; use a fine-grained personal access token instead","documentation_url":"` + admList + `"}`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				admExpect(t, w.call(t, tc.method, tc.path, tc.as, nil), tc.status, tc.body)
			})
		}
	})

	t.Run("listing, filtering and paging", func(t *testing.T) {
		if got := admNames(admItems(t, w.call(t, "GET", reqs, "alice-admin", nil))); got != "carol-ci,ci3,ci2,ci1" {
			t.Fatalf("pending requests: %s", got)
		}
		if got := admNames(admItems(t, w.call(t, "GET", reqs+"?direction=asc", "alice-admin", nil))); got != "ci1,ci2,ci3,carol-ci" {
			t.Fatalf("ascending: %s", got)
		}
		if got := admNames(admItems(t, w.call(t, "GET", reqs+"?owner[]=carol", "alice-admin", nil))); got != "carol-ci" {
			t.Fatalf("owner[]=carol: %s", got)
		}
		if got := admNames(admItems(t, w.call(t, "GET", reqs+"?permission=issues", "alice-admin", nil))); got != "ci2" {
			t.Fatalf("permission=issues: %s", got)
		}
		if got := admNames(admItems(t, w.call(t, "GET", reqs+"?repository=docs", "alice-admin", nil))); got != "" {
			t.Fatalf("repository=docs: %s", got)
		}
		if got := admNames(admItems(t, w.call(t, "GET", reqs+"?last_used_before=2030-01-01T00:00:00Z", "alice-admin", nil))); got != "" {
			t.Fatalf("last_used_before (never used): %s", got)
		}
		first := w.call(t, "GET", reqs+"?per_page=3", "alice-admin", nil)
		if got := admNames(admItems(t, first)); got != "carol-ci,ci3,ci2" {
			t.Fatalf("page 1: %s", got)
		}
		base := "http://" + w.admin + reqs
		if got, want := first.header.Get("Link"), `<`+base+`?page=2&per_page=3>; rel="next", <`+base+`?page=2&per_page=3>; rel="last"`; got != want {
			t.Fatalf("Link page 1:\n got %s\nwant %s", got, want)
		}
		second := w.call(t, "GET", reqs+"?per_page=3&page=2", "alice-admin", nil)
		if got := admNames(admItems(t, second)); got != "ci1" {
			t.Fatalf("page 2: %s", got)
		}
		if got, want := second.header.Get("Link"), `<`+base+`?page=1&per_page=3>; rel="prev", <`+base+`?page=1&per_page=3>; rel="first"`; got != want {
			t.Fatalf("Link page 2:\n got %s\nwant %s", got, want)
		}
		admExpect(t, w.call(t, "GET", reqs+"?direction=up", "alice-admin", nil), 422,
			`{"message":"Validation Failed: direction: unknown value \"up\", want \"asc\" or \"desc\"","errors":[{"resource":"PersonalAccessTokenRequest","field":"direction","code":"invalid","message":"direction: unknown value \"up\", want \"asc\" or \"desc\""}],"documentation_url":"`+admList+`"}`)
	})

	ids := map[string]int64{}
	for _, it := range admItems(t, w.call(t, "GET", reqs, "alice-admin", nil)) {
		ids[it.TokenName] = it.ID
	}

	t.Run("validation", func(t *testing.T) {
		many := make([]int64, 101)
		for i := range many {
			many[i] = int64(i + 1)
		}
		long := strings.Repeat("x", 1025)
		for _, tc := range []struct {
			note string
			body any
			want string
		}{
			{note: "101 ids", body: map[string]any{"pat_request_ids": many, "action": "approve"},
				want: `{"message":"Validation Failed: pat_request_ids: give 1 to 100 ids, got 101","errors":[{"resource":"PersonalAccessTokenRequest","field":"pat_request_ids","code":"invalid","message":"pat_request_ids: give 1 to 100 ids, got 101"}],"documentation_url":"` + admBulk + `"}`},
			{note: "1025-character reason", body: map[string]any{"pat_request_ids": []int64{ids["ci1"]}, "action": "deny", "reason": long},
				want: `{"message":"Validation Failed: reason: at most 1024 characters, got 1025","errors":[{"resource":"PersonalAccessTokenRequest","field":"reason","code":"invalid","message":"reason: at most 1024 characters, got 1025"}],"documentation_url":"` + admBulk + `"}`},
			{note: "unknown action", body: map[string]any{"pat_request_ids": []int64{ids["ci1"]}, "action": "maybe"},
				want: `{"message":"Validation Failed: action: unknown value \"maybe\", want \"approve\" or \"deny\"","errors":[{"resource":"PersonalAccessTokenRequest","field":"action","code":"invalid","message":"action: unknown value \"maybe\", want \"approve\" or \"deny\""}],"documentation_url":"` + admBulk + `"}`},
		} {
			t.Run(tc.note, func(t *testing.T) {
				admExpect(t, w.call(t, "POST", reqs, "alice-admin", tc.body), 422, tc.want)
			})
		}
		t.Run("1024-character reason is fine", func(t *testing.T) {
			// A reason at the limit passes validation; an unknown id then fails as a whole.
			r := w.call(t, "POST", reqs, "alice-admin", map[string]any{"pat_request_ids": []int64{999}, "action": "deny", "reason": strings.Repeat("x", 1024)})
			var e struct {
				Errors []struct{ Resource, Field string }
			}
			if r.status != 422 || json.Unmarshal([]byte(r.body), &e) != nil || len(e.Errors) != 1 ||
				e.Errors[0].Field != "pat_request_ids" || !strings.Contains(r.body, "999") {
				t.Fatalf("unknown id: %d %s", r.status, r.body)
			}
		})
	})

	t.Run("single review flips the decision", func(t *testing.T) {
		if w.allowed(t, "ci1") {
			t.Fatal("ci1 allowed while pending")
		}
		admExpect(t, w.call(t, "POST", fmt.Sprintf("%s/%d", reqs, ids["ci1"]), "alice-admin", map[string]any{"action": "approve", "reason": "ok"}), 204, "")
		w.flips(t, "ci1", true)
		admExpect(t, w.call(t, "POST", fmt.Sprintf("%s/%d", reqs, ids["ci1"]), "alice-admin", map[string]any{"action": "deny"}), 422, "")
		admExpect(t, w.call(t, "POST", reqs+"/424242", "alice-admin", map[string]any{"action": "deny"}), 404, "")
	})

	t.Run("bulk review", func(t *testing.T) {
		admExpect(t, w.call(t, "POST", reqs, "alice-fg", map[string]any{"pat_request_ids": []int64{ids["ci2"], ids["carol-ci"]}, "action": "approve"}), 202, "{}")
		w.flips(t, "ci2", true)
		w.flips(t, "carol-ci", true)
		admExpect(t, w.call(t, "POST", reqs, "erin-admin", map[string]any{"pat_request_ids": []int64{ids["ci3"]}, "action": "deny", "reason": "too broad"}), 202, "{}")
		if got := admNames(admItems(t, w.call(t, "GET", reqs, "alice-admin", nil))); got != "" {
			t.Fatalf("pending after the reviews: %s", got)
		}
		denied := admItems(t, w.call(t, "GET", reqs+"?state=denied", "alice-admin", nil))
		if got := admNames(denied); got != "ci3" {
			t.Fatalf("denied: %s", got)
		}
		if w.allowed(t, "ci3") {
			t.Fatal("ci3 allowed after a denial")
		}
	})

	const grants = "/orgs/octo-org/personal-access-tokens"
	t.Run("grants: list, repositories and revocation", func(t *testing.T) {
		if got := admNames(admItems(t, w.call(t, "GET", grants, "alice-admin", nil))); got != "alice-fg,carol-ci,ci2,ci1" && got != "carol-ci,ci2,ci1,alice-fg" {
			t.Fatalf("approved grants: %s", got)
		}
		admExpect(t, w.call(t, "GET", grants, "bob-admin", nil), 403, "")
		repos := w.call(t, "GET", fmt.Sprintf("%s/%d/repositories", grants, w.tokenID(t, "ci1")), "alice-admin", nil)
		admExpect(t, repos, 200, `[{"name":"app","full_name":"octo-org/app","owner":{"login":"octo-org","type":"Organization","site_admin":false},"private":true,"visibility":"private"}]`)
		admExpect(t, w.call(t, "POST", fmt.Sprintf("%s/%d", grants, w.tokenID(t, "ci1")), "alice-admin", map[string]any{"action": "revoke"}), 204, "")
		w.flips(t, "ci1", false)
		admExpect(t, w.call(t, "POST", grants, "alice-admin", map[string]any{"pat_ids": []int64{w.tokenID(t, "ci2"), w.tokenID(t, "carol-ci")}, "action": "revoke", "reason": "rotation"}), 202, "{}")
		w.flips(t, "ci2", false)
		w.flips(t, "carol-ci", false)
		admExpect(t, w.call(t, "POST", grants, "alice-admin", map[string]any{"pat_ids": []int64{w.tokenID(t, "ci2")}, "action": "delete"}), 422, "")
	})

	t.Run("audit log", func(t *testing.T) {
		r := w.call(t, "GET", "/orgs/octo-org/audit-log?action=grant.revoke", "alice-admin", nil)
		var events []struct {
			Actor, Action, Reason string
			TokenID               int64          `json:"token_id"`
			Details               map[string]any `json:"details"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &events) != nil || len(events) != 3 {
			t.Fatalf("audit log: %d %s", r.status, r.body)
		}
		if events[0].Actor != "alice" || events[0].Action != "grant.revoke" || events[0].Reason != "rotation" {
			t.Fatalf("newest event: %+v", events[0])
		}
		// An event says which of the actor's tokens acted.
		_, aliceAdmin := w.decide(t, "alice-admin")
		if got := events[0].Details["actor_token_id"]; aliceAdmin == 0 || got != float64(aliceAdmin) {
			t.Fatalf("newest event's actor_token_id: %v, want alice-admin's id %d", got, aliceAdmin)
		}
		r = w.call(t, "GET", "/orgs/octo-org/audit-log?actor=erin", "alice-admin", nil)
		if r.status != 200 || !strings.Contains(r.body, `"action":"request.deny"`) || !strings.Contains(r.body, `"reason":"too broad"`) {
			t.Fatalf("erin's events: %d %s", r.status, r.body)
		}
		admExpect(t, w.call(t, "GET", "/orgs/octo-org/audit-log", "bob-admin", nil), 403, "")
		// An action the log never records is a mistake, not an empty page.
		const unknown = `action: unknown action \"grant.delete\", want one of token.create, request.create, request.approve, request.deny, grant.revoke, token.revoke, store.import`
		admExpect(t, w.call(t, "GET", "/orgs/octo-org/audit-log?action=grant.delete", "alice-admin", nil), 422,
			`{"message":"Validation Failed: `+unknown+`","errors":[{"resource":"AuditEvent","field":"action","code":"invalid","message":"`+unknown+`"}],"documentation_url":"https://github.com/opa-pat/opa-pat/blob/main/docs/admin-api.md#audit-log"}`)
		out := runCLI(t, w.bin, nil, "audit", "list", "--store", w.store, "--org", "octo-org", "--action", "grant.revoke", "--output", "json")
		if !strings.Contains(out, `"rotation"`) {
			t.Fatalf("opa-pat audit list: %s", out)
		}
	})

	t.Run("users' own tokens", func(t *testing.T) {
		r := w.call(t, "POST", "/user/personal-access-tokens", "bob-user", map[string]any{
			"name": "deploy", "kind": "fine_grained", "resource_owner": "octo-org", "repository_selection": "selected",
			"repositories": []string{"app"}, "permissions": map[string]string{"contents": "write"}, "expires_in_days": 7, "reason": "deploys",
		})
		var created struct {
			ID      int64  `json:"id"`
			Token   string `json:"token"`
			Request struct {
				ID    int64  `json:"id"`
				State string `json:"state"`
			} `json:"request"`
		}
		if r.status != 201 || json.Unmarshal([]byte(r.body), &created) != nil || created.Token == "" || created.Request.State != "pending" {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		w.raw["deploy"] = created.Token
		if w.allowed(t, "deploy") {
			t.Fatal("new token allowed while pending")
		}
		list := w.call(t, "GET", "/user/personal-access-tokens", "bob-user", nil)
		if list.status != 200 || strings.Contains(list.body, created.Token) || !strings.Contains(list.body, `"name":"deploy"`) {
			t.Fatalf("own tokens: %d %s", list.status, list.body)
		}
		admExpect(t, w.call(t, "POST", fmt.Sprintf("%s/%d", reqs, created.Request.ID), "alice-admin", map[string]any{"action": "approve"}), 204, "")
		w.flips(t, "deploy", true)
		admExpect(t, w.call(t, "DELETE", fmt.Sprintf("/user/personal-access-tokens/%d", w.tokenID(t, "alice-fg")), "bob-user", nil), 404, "")
		admExpect(t, w.call(t, "POST", "/user/personal-access-tokens", "bob-admin", map[string]any{"name": "x", "kind": "classic"}), 403, "")
		admExpect(t, w.call(t, "DELETE", fmt.Sprintf("/user/personal-access-tokens/%d", created.ID), "bob-user", nil), 204, "")
		w.flips(t, "deploy", false)
		admExpect(t, w.call(t, "GET", reqs, "deploy", nil), 401, "")
	})

	t.Run("token_last_used_at follows decisions, in batches", func(t *testing.T) {
		// ci1 and carol-ci were used by the decisions above; ci3 only while it was denied, which
		// counts as use too (GitHub records the attempt). bob-admin was only used on this API.
		var got string
		poll(t, 15*time.Second, "token_last_used_at to be written", func() bool {
			r := w.call(t, "GET", reqs+"?state=all&last_used_after=2020-01-01T00:00:00Z&owner[]=carol", "alice-admin", nil)
			got = admNames(admItems(t, r))
			return got == "carol-ci"
		})
		r := w.call(t, "GET", reqs+"?state=all&per_page=100", "alice-admin", nil)
		var items []struct {
			TokenName  string  `json:"token_name"`
			LastUsedAt *string `json:"token_last_used_at"`
		}
		if err := json.Unmarshal([]byte(r.body), &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.LastUsedAt == nil && it.TokenName != "alice-fg" {
				t.Errorf("%s: token_last_used_at is null", it.TokenName)
			}
		}
	})
}

// tokenID looks a token's id up by name in the owner's listings.
func (w *admWorld) tokenID(t *testing.T, name string) int64 {
	t.Helper()
	for _, it := range admItems(t, w.call(t, "GET", "/orgs/octo-org/personal-access-token-requests?state=all&per_page=100", "alice-admin", nil)) {
		if it.TokenName == name {
			return it.TokenID
		}
	}
	t.Fatalf("no token %s", name)
	return 0
}

// decideAt asks OPA's REST API for data.pat.decision: a write to
// owner/repo (private) with the named token; whether it allows and why not.
func (w *admWorld) decideAt(t *testing.T, name, owner, repo string) (bool, string) {
	t.Helper()
	return w.decideFor(t, w.raw[name], map[string]any{"owner": owner, "repository": repo, "visibility": "private"}, "write", "contents")
}

// decideFor asks data.pat.decision for a request with the raw token on
// resource: whether it allows and why not.
func (w *admWorld) decideFor(t *testing.T, raw string, resource map[string]any, action, permission string) (bool, string) {
	t.Helper()
	in := map[string]any{"input": map[string]any{
		"credential": map[string]any{"type": "pat", "token": raw},
		"resource":   resource,
		"action":     action, "permission": permission,
	}}
	b, _ := json.Marshal(in)
	resp, err := http.Post("http://"+w.api+"/v1/data/pat/decision", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Allow   bool    `json:"allow"`
			Message *string `json:"message"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	msg := ""
	if out.Result.Message != nil {
		msg = *out.Result.Message
	}
	return out.Result.Allow, msg
}

// Where approval is disabled (acme-labs), a member's fine-grained token
// without a grant reaches the organization (rule 20): the owner sees it in
// GitHub's list of tokens with access, revokes it, and the decision denies
// it within a second, with the owner's reason, as for a revoked grant.
func TestAdminAPIRevokesATokenWithoutAGrant(t *testing.T) {
	w := startAdmin(t)
	id := w.importLabs(t)
	admExpect(t, w.call(t, "POST", fmt.Sprintf("/orgs/acme-labs/personal-access-tokens/%d", id), "alice-admin",
		map[string]any{"action": "revoke", "reason": "offboarding"}), 204, "")
	took := poll(t, time.Second, "the decision to deny the revoked token", func() bool {
		allow, msg := w.decideAt(t, "labs", "acme-labs", "research")
		return !allow && msg == labsRevoked
	})
	t.Logf("the decision denied the token %s after its revocation", took.Round(time.Millisecond))
	items := admItems(t, w.call(t, "GET", "/orgs/acme-labs/personal-access-tokens?state=revoked", "alice-admin", nil))
	if len(items) != 1 || items[0].ID != id || items[0].State != "revoked" || items[0].Reason != "offboarding" {
		t.Fatalf("the revoked grant: %+v", items)
	}
	r := w.call(t, "GET", fmt.Sprintf("/orgs/acme-labs/audit-log?action=grant.revoke&token_id=%d", id), "alice-admin", nil)
	if r.status != 200 || !strings.Contains(r.body, `"actor":"alice"`) || !strings.Contains(r.body, `"had_grant":false`) {
		t.Fatalf("the audit event: %d %s", r.status, r.body)
	}
}

// labsRevoked is the decision's denial of the labs token once an owner
// revoked its access with the reason "offboarding".
const labsRevoked = "acme-labs does not require approval of fine-grained personal access tokens, but an owner revoked this token's access (reason: offboarding): an owner's decision stands; ask an owner of acme-labs to require approval and then request access again, or create a new token"

// importLabs adds acme-labs (approval disabled: admSettings), alice its
// owner and bob a member, and bob's token "labs" aimed at it without a
// grant, which the decision allows (rule 20); it returns the token's id.
func (w *admWorld) importLabs(t *testing.T) int64 {
	t.Helper()
	dir := t.TempDir()
	raw := admGenerate(t, "fine_grained")
	w.raw["labs"] = raw
	created := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	expires := time.Now().UTC().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, dir, "labs.json", fmt.Sprintf(`{
  "memberships": [{"user": "alice", "org": "acme-labs", "role": "owner"}, {"user": "bob", "org": "acme-labs", "role": "member"}],
  "repositories": [{"owner": "acme-labs", "name": "research", "visibility": "private"}],
  "tokens": [{"token": %q, "name": "labs", "kind": "fine_grained", "user": "bob", "created_at": %q, "expires_at": %q, "revoked": false,
              "resource_owner": "acme-labs", "repository_selection": "all", "permissions": {"contents": "write"}}]
}`, raw, created, expires)))
	poll(t, 2*time.Second, "the imported token to be allowed on acme-labs/research", func() bool {
		allow, _ := w.decideAt(t, "labs", "acme-labs", "research")
		return allow
	})
	items := admItems(t, w.call(t, "GET", "/orgs/acme-labs/personal-access-tokens?state=all", "alice-admin", nil))
	if len(items) != 1 || items[0].TokenName != "labs" || items[0].State != "none" || items[0].Owner.Login != "bob" {
		t.Fatalf("the tokens with access to acme-labs: %+v", items)
	}
	return items[0].ID
}

// A token creates no fine-grained token that reaches further than it,
// through the real admin API: not with a permission whose requests the Envoy
// gate would refuse the creator (rule 11: workflow, delete_repo; metadata on
// private repositories needs repo), and not for an organization whose
// policies refuse the creator itself (rules 13-16: locked-org forbids
// classic tokens), with the decision's own reason.
func TestAdminAPICreationReachesNoFurtherThanItsCreator(t *testing.T) {
	w := startAdmin(t)
	// bob-org holds user and admin:org, not repo; bob-gpg user (which the
	// admin API asks to manage tokens) and read:gpg_key.
	w.raw["bob-org"] = admGenerate(t, "classic")
	w.raw["bob-gpg"] = admGenerate(t, "classic")
	created := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	expires := time.Now().UTC().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, t.TempDir(), "locked.json", fmt.Sprintf(`{
  "memberships": [{"user": "bob", "org": "locked-org", "role": "member"}],
  "tokens": [{"token": %q, "name": "bob-org", "kind": "classic", "user": "bob", "scopes": ["user", "admin:org"], "created_at": %q, "expires_at": %q, "revoked": false},
             {"token": %q, "name": "bob-gpg", "kind": "classic", "user": "bob", "scopes": ["user", "read:gpg_key"], "created_at": %q, "expires_at": %q, "revoked": false}]
}`, w.raw["bob-org"], created, expires, w.raw["bob-gpg"], created, expires)))
	const path = "/user/personal-access-tokens"
	refused := func(r admResponse, messages ...string) {
		t.Helper()
		var e struct {
			Errors []struct{ Field, Message string }
		}
		ok := r.status == 422 && json.Unmarshal([]byte(r.body), &e) == nil && len(e.Errors) == len(messages)
		for i := 0; ok && i < len(messages); i++ {
			ok = e.Errors[i].Field == "token" && e.Errors[i].Message == messages[i]
		}
		if !ok {
			t.Fatalf("got %d %s\nwant 422 naming token: %q", r.status, r.body, messages)
		}
	}
	fg := func(owner, selection string, perms map[string]string) map[string]any {
		body := map[string]any{"name": "reach", "kind": "fine_grained", "resource_owner": owner, "repository_selection": selection, "permissions": perms}
		if selection == "selected" {
			body["repositories"] = []string{"app"}
		}
		return body
	}
	const further = "a token cannot create one that reaches further than it: "
	const operator = "; create the token with one that has it, or ask an operator (opa-pat token create)"
	// bob-user holds repo and user: not workflow, delete_repo or admin:org.
	refused(w.call(t, "POST", path, "bob-user", fg("octo-org", "all", map[string]string{"contents": "write", "workflows": "write"})),
		further+`the permissions "workflows" need the "workflow" scope, which the token making this request lacks`+operator)
	refused(w.call(t, "POST", path, "bob-user", fg("octo-org", "selected", map[string]string{"administration": "write"})),
		further+`the permissions "administration" need the "admin:org" scope, which the token making this request lacks`+operator,
		further+`the permissions "administration" need the "delete_repo" scope, which the token making this request lacks`+operator)
	// bob-org: not the repo that private repositories' metadata needs, not
	// admin:org_hook.
	refused(w.call(t, "POST", path, "bob-org", fg("octo-org", "all", nil)),
		further+`the permissions "metadata" need the "repo" scope, which the token making this request lacks`+operator)
	refused(w.call(t, "POST", path, "bob-org", fg("octo-org", "public", map[string]string{"organization_hooks": "write"})),
		further+`the permissions "organization_hooks" need the "admin:org_hook" scope, which the token making this request lacks`+operator)

	// locked-org forbids classic tokens: the decision denies bob-user there,
	// and creation refuses with the decision's reason.
	allow, reason := w.decideAt(t, "bob-user", "locked-org", "vault")
	const forbids = "locked-org forbids access via a personal access token (classic): the policy is set by the locked-org organization; use a fine-grained personal access token instead"
	if allow || reason != forbids {
		t.Fatalf("bob-user at locked-org: allow %v, %q; want %q", allow, reason, forbids)
	}
	refused(w.call(t, "POST", path, "bob-user", fg("locked-org", "all", map[string]string{"contents": "write"})),
		further+"locked-org refuses the token making this request ("+forbids+"); create the token with one that locked-org lets through, or ask an operator (opa-pat token create)")
	refused(w.call(t, "POST", path, "bob-user", fg("locked-org", "public", nil)),
		further+"locked-org refuses the token making this request ("+forbids+"); create the token with one that locked-org lets through, or ask an operator (opa-pat token create)")

	// An account permission (gpg_keys): a service asks the decision for it
	// on bob's own account, where a classic token needs GitHub's scope of
	// the permission (read:gpg_key to read, write:gpg_key or admin:gpg_key
	// to write; repo does not stand in for them) whatever the new token's
	// repository selection. bob-org and bob-user (repo) lack them: the
	// decision refuses them bob's GPG keys, and creation refuses them a
	// token that reads them, also one limited to public repositories
	// (GitHub's default).
	account := map[string]any{"owner": "bob"}
	const noGPG = `Not Found: a personal access token (classic) needs the "admin:gpg_key" or "read:gpg_key" or "write:gpg_key" scope to read the "gpg_keys" of bob; regenerate the token with one of them`
	for _, as := range []string{"bob-org", "bob-user"} {
		if allow, reason := w.decideFor(t, w.raw[as], account, "read", "gpg_keys"); allow || reason != noGPG {
			t.Fatalf("%s reading bob's GPG keys: allow %v, %q; want %q", as, allow, reason, noGPG)
		}
		refused(w.call(t, "POST", path, as, fg("bob", "public", map[string]string{"gpg_keys": "read"})),
			further+`the permissions "gpg_keys" need the "admin:gpg_key" or "read:gpg_key" or "write:gpg_key" scope, which the token making this request lacks`+operator)
	}
	// bob-gpg reads them, and does not write them (403: it sees them).
	if allow, reason := w.decideFor(t, w.raw["bob-gpg"], account, "read", "gpg_keys"); !allow {
		t.Fatalf("bob-gpg reading bob's GPG keys: denied, %q", reason)
	}
	const readOnly = `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:gpg_key" or "write:gpg_key" scope to write the "gpg_keys" of bob; regenerate the token with one of them`
	if allow, reason := w.decideFor(t, w.raw["bob-gpg"], account, "write", "gpg_keys"); allow || reason != readOnly {
		t.Fatalf("bob-gpg writing bob's GPG keys: allow %v, %q; want %q", allow, reason, readOnly)
	}
	refused(w.call(t, "POST", path, "bob-gpg", fg("bob", "public", map[string]string{"gpg_keys": "write"})),
		further+`the permissions "gpg_keys" need the "admin:gpg_key" or "write:gpg_key" scope, which the token making this request lacks`+operator)
	// user covers the email addresses and the profile, not what GitHub has
	// no scope for (user_models: repo).
	refused(w.call(t, "POST", path, "bob-org", map[string]any{"name": "reach", "kind": "fine_grained", "permissions": map[string]string{"emails": "read", "profile": "write", "user_models": "read"}}),
		further+`the permissions "user_models" need the "repo" scope, which the token making this request lacks`+operator)

	// Nothing was created; what the creator reaches, it creates.
	if r := w.call(t, "GET", path+"?per_page=100", "bob-user", nil); r.status != 200 || strings.Contains(r.body, `"name":"reach"`) {
		t.Fatalf("a refused token was created: %d %s", r.status, r.body)
	}
	admExpect(t, w.call(t, "POST", path, "bob-user", fg("octo-org", "all", map[string]string{"contents": "write", "administration": "read"})), 201, "")
	var made struct {
		Token       string
		Permissions map[string]string
	}
	r := w.call(t, "POST", path, "bob-gpg", fg("bob", "public", map[string]string{"gpg_keys": "read"}))
	if r.status != 201 || json.Unmarshal([]byte(r.body), &made) != nil || made.Token == "" {
		t.Fatalf("bob-gpg creating a token with gpg_keys: read: %d %s", r.status, r.body)
	}
	poll(t, 2*time.Second, "the new token to read bob's GPG keys", func() bool {
		allow, _ := w.decideFor(t, made.Token, account, "read", "gpg_keys")
		return allow
	})
	// GitHub's two spellings of an account permission are one: the token
	// holds the REST API's (email_addresses), which a request naming
	// either is decided on; both in one body are refused.
	made.Permissions = nil
	r = w.call(t, "POST", path, "bob-org", map[string]any{"name": "mail", "kind": "fine_grained", "permissions": map[string]string{"emails": "read", "profile": "write"}})
	if r.status != 201 || json.Unmarshal([]byte(r.body), &made) != nil || made.Token == "" {
		t.Fatalf("bob-org creating a token with emails: read: %d %s", r.status, r.body)
	}
	if want := map[string]string{"email_addresses": "read", "metadata": "read", "profile": "write"}; !reflect.DeepEqual(made.Permissions, want) {
		t.Fatalf("created with permissions %v; want %v", made.Permissions, want)
	}
	poll(t, 2*time.Second, "the new token to read bob's email addresses", func() bool {
		allow, _ := w.decideFor(t, made.Token, account, "read", "email_addresses")
		return allow
	})
	const heldRead = `Resource not accessible by personal access token: the request needs the "email_addresses" permission at "write" or above and the token has "read"; edit the token's permissions`
	for _, tc := range []struct {
		permission, action, reason string
	}{{"emails", "read", ""}, {"email_addresses", "write", heldRead}, {"emails", "write", heldRead}} {
		if allow, reason := w.decideFor(t, made.Token, account, tc.action, tc.permission); allow != (tc.reason == "") || reason != tc.reason {
			t.Errorf("%s %s: allow %v, %q; want %q", tc.permission, tc.action, allow, reason, tc.reason)
		}
	}
	r = w.call(t, "POST", path, "bob-org", map[string]any{"name": "twice", "kind": "fine_grained", "permissions": map[string]string{"emails": "read", "email_addresses": "write"}})
	var e struct {
		Errors []struct{ Field, Message string }
	}
	if r.status != 422 || json.Unmarshal([]byte(r.body), &e) != nil || len(e.Errors) != 1 || e.Errors[0].Field != "permissions.emails" ||
		e.Errors[0].Message != "permissions.emails: GitHub's REST API spells this permission email_addresses, which is given too; give it once, as email_addresses" {
		t.Fatalf("both spellings: %d %s", r.status, r.body)
	}
}

// An enterprise managed user's own fine-grained token keeps the
// enterprise's lifetime limit when the user creates it through the admin
// API (rules 27 and 29), with the resource owner given or left to its
// default; the enterprise's owner is exempt (rule 28: emu exempts
// administrators).
func TestAdminAPICreationKeepsTheManagedUsersLimit(t *testing.T) {
	w := startAdmin(t)
	// Classic tokens without expiry (emu sets no classic limit): the new
	// tokens' expiries are held to the enterprise's limit alone.
	created := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	var recs []string
	for _, user := range []string{"emu_mo", "ema"} {
		w.raw[user] = admGenerate(t, "classic")
		recs = append(recs, fmt.Sprintf(`{"token": %q, "name": %q, "kind": "classic", "user": %q, "scopes": ["user", "repo"], "created_at": %q, "expires_at": null, "revoked": false}`,
			w.raw[user], user, user, created))
	}
	runCLI(t, w.bin, nil, "store", "import", "--store", w.store, writeFile(t, t.TempDir(), "emu.json", `{
  "users": [{"login": "emu_mo", "managed_by": "emu"}, {"login": "ema", "managed_by": "emu"}],
  "tokens": [`+strings.Join(recs, ",\n")+`]
}`))
	const path = "/user/personal-access-tokens"
	const beyond = "emu forbids access via a fine-grained personal access token if the token's lifetime is greater than 30 days: the policy is set by the emu enterprise; "
	for _, tc := range []struct {
		note, as string
		body     map[string]any
		message  string // "" when created
	}{
		{note: "no resource owner, 90 days", as: "emu_mo", body: map[string]any{"kind": "fine_grained", "expires_in_days": 90},
			message: beyond + "the token's lifetime is 90 days; choose an expiration of 30 days or less"},
		{note: "the user as resource owner, in another case, no expiry", as: "emu_mo", body: map[string]any{"kind": "fine_grained", "resource_owner": "EMU_MO", "no_expiry": true},
			message: beyond + "the token has no expiration date; choose an expiration of 30 days or less"},
		{note: "30 days", as: "emu_mo", body: map[string]any{"kind": "fine_grained", "resource_owner": "emu_mo", "expires_in_days": 30}},
		{note: "the enterprise's owner, exempt", as: "ema", body: map[string]any{"kind": "fine_grained", "expires_in_days": 90}},
	} {
		r := w.call(t, "POST", path, tc.as, tc.body)
		if tc.message == "" {
			if r.status != 201 {
				t.Errorf("%s: got %d %s; want 201", tc.note, r.status, r.body)
			}
			continue
		}
		var e struct {
			Errors []struct{ Field, Message string }
		}
		if r.status != 422 || json.Unmarshal([]byte(r.body), &e) != nil || len(e.Errors) != 1 || e.Errors[0].Field != "token" || e.Errors[0].Message != tc.message {
			t.Errorf("%s: got %d %s\nwant 422 naming token: %q", tc.note, r.status, r.body, tc.message)
		}
	}
}
