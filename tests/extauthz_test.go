package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// eaWorld is the store the gate tests run against: octo-org (in the acme
// enterprise, fine-grained tokens need approval) with bob as a member and
// alice as its owner.
const eaWorld = `{
  "users": [{"login": "bob", "managed_by": null}, {"login": "alice", "managed_by": null}, {"login": "carol", "managed_by": null}],
  "memberships": [
    {"user": "bob", "org": "octo-org", "role": "member"},
    {"user": "alice", "org": "octo-org", "role": "owner"},
    {"user": "carol", "org": "other-org", "role": "member"}
  ],
  "repositories": [
    {"owner": "octo-org", "name": "app", "visibility": "private"},
    {"owner": "octo-org", "name": "docs", "visibility": "public"},
    {"owner": "other-org", "name": "secret", "visibility": "private"}
  ]
}`

const eaSettings = `{
  "enterprises": {"acme": {"owners": ["erin"]}},
  "organizations": {"octo-org": {"enterprise": "acme"}}
}`

// eaGate is a running `opa-pat run --server` with the pat plugin, the
// ext_authz server and console decision logs.
type eaGate struct {
	bin, store, api string
	cmd             *exec.Cmd
	client          authv3.AuthorizationClient
	conn            *grpc.ClientConn
	output          syncBuffer // the sidecar's stdout and stderr
}

// eaToken creates a token with the CLI and returns its id and raw value.
func (g *eaGate) token(t *testing.T, args ...string) (id string, raw string) {
	t.Helper()
	out := runCLI(t, g.bin, nil, append([]string{"token", "create", "--store", g.store, "--output", "json"}, args...)...)
	var v struct {
		ID    json.Number `json:"id"`
		Token string      `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Token == "" {
		t.Fatalf("token create: %v: %s", err, out)
	}
	return v.ID.String(), v.Token
}

func startGate(t *testing.T) *eaGate {
	t.Helper()
	return startGateOn(t, freeAddr(t))
}

// startGateOn starts the gate on grpcAddr: host:port, or unix:///path.
func startGateOn(t *testing.T, grpcAddr string) *eaGate {
	t.Helper()
	return startGateWith(t, grpcAddr, "")
}

// startGateWith starts the gate with more of plugins.pat's configuration:
// YAML lines such as "token_prefixes: {classic: acme}".
func startGateWith(t *testing.T, grpcAddr, pluginConfig string) *eaGate {
	t.Helper()
	return startGateOnStore(t, grpcAddr, pluginConfig, nil)
}

// startGateOnStore starts the gate as startGateWith does, after prepare
// (when not nil) has done what it will to the store of eaWorld in dir.
func startGateOnStore(t *testing.T, grpcAddr, pluginConfig string, prepare func(bin, dir, store string)) *eaGate {
	t.Helper()
	g := &eaGate{bin: binary(t), api: freeAddr(t)}
	dir := t.TempDir()
	g.store = filepath.Join(dir, "pat.db")
	runCLI(t, g.bin, nil, "store", "import", "--store", g.store, writeFile(t, dir, "world.json", eaWorld))
	if prepare != nil {
		prepare(g.bin, dir, g.store)
	}
	config := writeFile(t, dir, "config.yaml", `
plugins:
  pat:
    store: {path: "`+g.store+`"}
    ext_authz: {addr: "`+grpcAddr+`"}
    `+pluginConfig+`
decision_logs:
  console: true
`)
	root := repoRoot()
	cmd := exec.Command(g.bin, "run", "--server", "--addr", g.api, "--config-file", config,
		"--ignore", "*_test.rego", "--log-format", "json",
		filepath.Join(root, "rego", "pat"), filepath.Join(root, "rego", "system"),
		"pat.settings:"+writeFile(t, dir, "settings.json", eaSettings))
	// The log greps below test the decision-log mask, not the stderr filter.
	cmd.Env = append(os.Environ(), "OPA_PAT_STDERR_REDACTION=off")
	cmd.Stdout, cmd.Stderr = &g.output, &g.output
	startProcess(t, cmd, 10*time.Second, g.output.String)
	g.cmd = cmd

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	g.conn, g.client = conn, authv3.NewAuthorizationClient(conn)
	health := healthpb.NewHealthClient(conn)
	poll(t, 30*time.Second, "the ext_authz server to serve", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return g
}

func eaRequest(method, target string, headers map[string]string) *authv3.CheckRequest {
	hs := map[string]string{":method": method, ":path": target, ":authority": "git.example.com", "user-agent": "git/2.45.0"}
	for k, v := range headers {
		hs[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: target, Host: "git.example.com", Scheme: "https", Headers: hs},
	}}}
}

func eaBasic(user, password string) map[string]string {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// eaAnswer is what a test checks of a CheckResponse.
type eaAnswer struct {
	grpcCode int32
	status   int               // HTTP status (200 when allowed)
	headers  map[string]string // headers set (upstream ones when allowed, the reply's when denied)
	remove   []string
	respHdrs map[string]string // response headers to add (allowed)
	message  string            // the body's message (denied)
}

func eaRead(t *testing.T, resp *authv3.CheckResponse) eaAnswer {
	t.Helper()
	a := eaAnswer{grpcCode: resp.GetStatus().GetCode(), headers: map[string]string{}, respHdrs: map[string]string{}}
	check := func(h *corev3.HeaderValueOption) {
		if h.GetAppend() == nil || h.GetAppend().GetValue() || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %q: want append false and OVERWRITE_IF_EXISTS_OR_ADD, got %v", h.GetHeader().GetKey(), h)
		}
	}
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		a.status = 200
		for _, h := range r.OkResponse.GetHeaders() {
			check(h)
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		for _, h := range r.OkResponse.GetResponseHeadersToAdd() {
			check(h)
			a.respHdrs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		a.remove = r.OkResponse.GetHeadersToRemove()
	case *authv3.CheckResponse_DeniedResponse:
		a.status = int(r.DeniedResponse.GetStatus().GetCode())
		for _, h := range r.DeniedResponse.GetHeaders() {
			check(h)
			a.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		var body struct {
			Message          string `json:"message"`
			DocumentationURL string `json:"documentation_url"`
		}
		if err := json.Unmarshal([]byte(r.DeniedResponse.GetBody()), &body); err != nil || body.DocumentationURL == "" {
			t.Errorf("denial body: want JSON with message and documentation_url, got %q", r.DeniedResponse.GetBody())
		}
		a.message = body.Message
	default:
		t.Fatalf("answer without an HTTP response: %s", protojson.Format(resp))
	}
	return a
}

// waitAllowed waits (at most 3 s: the store reaches the sidecar within a
// second) until a token created with the CLI clones octo-org/app.
func (g *eaGate) waitAllowed(t *testing.T, raw string) {
	t.Helper()
	req := eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", raw))
	poll(t, 3*time.Second, "a new token to reach the gate", func() bool {
		_, got := g.check(t, req)
		return got.status == 200
	})
}

func (g *eaGate) check(t *testing.T, req *authv3.CheckRequest) (*authv3.CheckResponse, eaAnswer) {
	t.Helper()
	resp, err := g.client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, eaRead(t, resp)
}

func TestExtAuthzGate(t *testing.T) {
	g := startGate(t)
	_, classic := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "30d")
	_, forever := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--no-expiry")
	_, publicOnly := g.token(t, "--user", "bob", "--kind", "classic", "--expires-in", "30d")
	fgID, fg := g.token(t, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org",
		"--repositories", "app", "--permission", "contents=read", "--expires-in", "30d", "--reason", "ci")
	// Public repositories only, but organization members to manage: created
	// with a pending request.
	_, publicMembers := g.token(t, "--user", "bob", "--kind", "fine_grained", "--resource-owner", "octo-org",
		"--public-repositories", "--permission", "members=write", "--expires-in", "30d", "--reason", "onboarding")
	revokedID, revoked := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "30d")
	runCLI(t, g.bin, nil, "token", "revoke", "--store", g.store, revokedID)
	// The sidecar follows the store: once a token made after all of these
	// is known, they all are.
	_, sentinel := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "1d")
	g.waitAllowed(t, sentinel)
	// Grants may reach the gate a moment after their tokens (a decision in
	// between denies, with "not been approved").
	members := eaRequest("PUT", "/orgs/octo-org/memberships/dave", map[string]string{"authorization": "Bearer " + publicMembers})
	poll(t, 3*time.Second, "the pending request to reach the gate", func() bool {
		_, got := g.check(t, members)
		return strings.Contains(got.message, "awaiting approval")
	})
	unknown := "ghp_" + strings.Repeat("A", 30) + "000000" // well formed in length, bad checksum

	challenge := map[string]string{"content-type": "application/json; charset=utf-8", "www-authenticate": `Basic realm="opa-pat"`}
	jsonOnly := map[string]string{"content-type": "application/json; charset=utf-8"}
	expiry := time.Now().Add(30 * 24 * time.Hour).UTC()

	tests := []struct {
		note string
		req  *authv3.CheckRequest
		want eaAnswer
	}{
		{
			note: "git clone without credentials: 401 with the Basic challenge",
			req:  eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", nil),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 401, headers: challenge, message: "Requires authentication"},
		},
		{
			note: "git clone with a classic token as the password",
			req:  eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", classic)),
			want: eaAnswer{status: 200, headers: map[string]string{"x-pat-user": "bob"}},
		},
		{
			note: "git push with a classic token, client-sent x-pat-* headers do not reach the upstream",
			req: eaRequest("POST", "/octo-org/app.git/git-receive-pack", map[string]string{
				"authorization": eaBasic("x-access-token", forever)["authorization"], "x-pat-user": "mallory", "x-pat-role": "admin",
			}),
			want: eaAnswer{status: 200, headers: map[string]string{"x-pat-user": "bob"}, remove: []string{"x-pat-role"}},
		},
		{
			note: "header names in another case, as a hand-built request may send them, are read as Envoy's lower-case ones",
			req: eaRequest("POST", "/octo-org/app.git/git-receive-pack", map[string]string{
				"Authorization": "Bearer " + classic, "X-Pat-User": "mallory", "X-Pat-Role": "admin",
			}),
			want: eaAnswer{status: 200, headers: map[string]string{"x-pat-user": "bob"}, remove: []string{"x-pat-role"}},
		},
		{
			note: "REST read with Bearer",
			req:  eaRequest("GET", "/api/v3/repos/octo-org/app/contents/README.md", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{status: 200, headers: map[string]string{"x-pat-user": "bob"}},
		},
		{
			note: "a classic token without repo cannot see a private repository: 404",
			req:  eaRequest("GET", "/repos/octo-org/app/issues", map[string]string{"authorization": "token " + publicOnly}),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 404, headers: jsonOnly},
		},
		{
			note: "a fine-grained token awaiting approval: 403",
			req:  eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", fg)),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly},
		},
		{
			note: "a revoked token: 401 with the challenge",
			req:  eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", revoked)),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 401, headers: challenge},
		},
		{
			note: "an unknown token: 401 with the challenge",
			req:  eaRequest("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + unknown}),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 401, headers: challenge},
		},
		{
			note: "a push to /octo-org/.git names no repository and is not a request on the organization: 404",
			req:  eaRequest("POST", "/octo-org/.git/git-receive-pack", eaBasic("bob", classic)),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 404, headers: jsonOnly, message: "Not Found"},
		},
		{
			note: "a path that climbs out of the repository it names is not covered: 404",
			req:  eaRequest("PUT", "/repos/octo-org/app/contents/..%2F..%2Fother%2Fcontents%2Fx", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 404, headers: jsonOnly, message: "Not Found"},
		},
		{
			note: "a workflow file written with %2F still needs the workflow scope: 403",
			req:  eaRequest("PUT", "/repos/octo-org/app/contents/.github%2Fworkflows%2Fci.yml", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{
				grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly,
				message: `Resource not accessible by personal access token: a personal access token (classic) needs the "workflow" scope to change workflows; regenerate the token with the workflow scope`,
			},
		},
		{
			note: "deleting the organization needs admin:org, not repo: 403",
			req:  eaRequest("DELETE", "/orgs/octo-org", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{
				grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly,
				message: `Resource not accessible by personal access token: a personal access token (classic) needs the "admin:org" scope to write the "organization_administration" of octo-org; regenerate the token with that scope`,
			},
		},
		{
			note: "deleting a repository needs delete_repo, as on GitHub, not repo alone: 403",
			req:  eaRequest("DELETE", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{
				grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly,
				message: `Resource not accessible by personal access token: a personal access token (classic) needs the "delete_repo" scope to write this resource of octo-org; regenerate the token with that scope`,
			},
		},
		{
			note: "the audit log needs read:audit_log: 403",
			req:  eaRequest("GET", "/orgs/octo-org/audit-log", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{
				grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly,
				message: `Resource not accessible by personal access token: a personal access token (classic) needs the "read:audit_log" scope to read this resource of octo-org; regenerate the token with that scope`,
			},
		},
		{
			note: "a fine-grained token limited to public repositories still needs approval to manage members: 403",
			req:  members,
			want: eaAnswer{
				grpcCode: int32(code.Code_PERMISSION_DENIED), status: 403, headers: jsonOnly,
				message: "octo-org requires approval of fine-grained personal access tokens and this token's request is awaiting approval: the policy is set by the octo-org organization; ask an owner of octo-org to review the request",
			},
		},
		{
			note: "... and reads the organization's metadata without it",
			req:  eaRequest("GET", "/orgs/octo-org", map[string]string{"authorization": "Bearer " + publicMembers}),
			want: eaAnswer{status: 200, headers: map[string]string{"x-pat-user": "bob"}},
		},
		{
			note: "an unknown path: 404",
			req:  eaRequest("GET", "/user/repos", map[string]string{"authorization": "Bearer " + classic}),
			want: eaAnswer{grpcCode: int32(code.Code_PERMISSION_DENIED), status: 404, headers: jsonOnly, message: "Not Found"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.note, func(t *testing.T) {
			resp, got := g.check(t, tc.req)
			if got.grpcCode != tc.want.grpcCode || got.status != tc.want.status {
				t.Fatalf("got gRPC %d, HTTP %d; want %d, %d: %s", got.grpcCode, got.status, tc.want.grpcCode, tc.want.status, protojson.Format(resp))
			}
			for k, v := range tc.want.headers {
				if got.headers[k] != v {
					t.Errorf("header %s: got %q, want %q", k, got.headers[k], v)
				}
			}
			if got.status == 200 {
				if got.headers["x-pat-token-id"] == "" {
					t.Errorf("allowed without x-pat-token-id: %s", protojson.Format(resp))
				}
				if strings.Join(got.remove, ",") != strings.Join(tc.want.remove, ",") {
					t.Errorf("headers_to_remove: got %v, want %v", got.remove, tc.want.remove)
				}
			} else if len(got.headers) != len(tc.want.headers) {
				t.Errorf("denial headers: got %v, want %v", got.headers, tc.want.headers)
			}
			if tc.want.message != "" && got.message != tc.want.message {
				t.Errorf("message: got %q, want %q", got.message, tc.want.message)
			}
			for _, raw := range []string{classic, forever, publicOnly, fg, revoked} {
				if strings.Contains(protojson.Format(resp), raw) {
					t.Fatal("the answer carries a raw token")
				}
			}
		})
	}

	t.Run("expiring tokens get GitHub's expiration header", func(t *testing.T) {
		_, got := g.check(t, eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", classic)))
		exp, err := time.Parse("2006-01-02 15:04:05 UTC", got.respHdrs["GitHub-Authentication-Token-Expiration"])
		if err != nil || exp.Sub(expiry).Abs() > time.Minute {
			t.Fatalf("GitHub-Authentication-Token-Expiration: got %q, want about %s", got.respHdrs["GitHub-Authentication-Token-Expiration"], expiry)
		}
		_, got = g.check(t, eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", forever)))
		if v, ok := got.respHdrs["GitHub-Authentication-Token-Expiration"]; ok {
			t.Fatalf("a token without expiry: got the header %q", v)
		}
	})

	t.Run("an approval with the CLI reaches the gate", func(t *testing.T) {
		req := eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", fg))
		if _, got := g.check(t, req); got.status != 403 { // and now cached
			t.Fatalf("before: got %d", got.status)
		}
		out := runCLI(t, g.bin, nil, "requests", "list", "--store", g.store, "--org", "octo-org", "--output", "json")
		var reqs []struct {
			ID      json.Number `json:"id"`
			TokenID json.Number `json:"token_id"`
		}
		if err := json.Unmarshal([]byte(out), &reqs); err != nil {
			t.Fatalf("requests list: %v: %s", err, out)
		}
		var id string
		for _, r := range reqs {
			if r.TokenID.String() == fgID {
				id = r.ID.String()
			}
		}
		if id == "" {
			t.Fatalf("no request for token %s: %s", fgID, out)
		}
		runCLI(t, g.bin, nil, "requests", "approve", "--store", g.store, "--org", "octo-org", id)
		start := time.Now()
		poll(t, 3*time.Second, "the approval to reach the gate", func() bool {
			_, got := g.check(t, req)
			return got.status == 200
		})
		t.Logf("approval reached the gate after %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("git lfs: the batch body says read or write", func(t *testing.T) {
		// fg, approved above, may read contents of octo-org/app and nothing else.
		lfs := func(method, path, body, auth string) *authv3.CheckRequest {
			req := eaRequest(method, path, eaBasic("bob", auth))
			if body != "" {
				h := req.GetAttributes().GetRequest().GetHttp()
				h.Body = body
				h.Headers["content-type"] = "application/vnd.git-lfs+json; charset=utf-8"
				h.Headers["content-length"] = fmt.Sprint(len(body))
			}
			return req
		}
		const batch = "/octo-org/app.git/info/lfs/objects/batch"
		download := `{"operation":"download","transfers":["basic"],"objects":[{"oid":"12ab","size":3}]}`
		upload := `{"operation":"upload","transfers":["basic"],"objects":[{"oid":"12ab","size":3}]}`
		for _, tc := range []struct {
			note string
			req  *authv3.CheckRequest
			want int
		}{
			{"download with a read-only token", lfs("POST", batch, download, fg), 200},
			{"upload with a read-only token", lfs("POST", batch, upload, fg), 403},
			{"a batch without its body asks for write", lfs("POST", batch, "", fg), 403},
			{"upload with a classic repo token", lfs("POST", batch, upload, classic), 200},
			{"list locks with a read-only token", lfs("GET", "/octo-org/app.git/info/lfs/locks?path=a.bin", "", fg), 200},
			{"verify locks before a push with a read-only token", lfs("POST", "/octo-org/app.git/info/lfs/locks/verify", `{}`, fg), 403},
			{"a batch by GET is not a path the gate covers", lfs("GET", batch, "", classic), 404},
			// What a Go LFS server would read as upload (encoding/json matches keys in any case,
			// the last one wins), and a body with something after its JSON value, ask for write.
			{"download beside Operation: upload, read-only", lfs("POST", batch, `{"operation":"download","Operation":"upload","objects":[]}`, fg), 403},
			{"download followed by junk, read-only", lfs("POST", batch, download+` {"operation":"upload"}`, fg), 403},
		} {
			if _, got := g.check(t, tc.req); got.status != tc.want {
				t.Errorf("%s: got %d, want %d", tc.note, got.status, tc.want)
			}
		}
	})

	t.Run("a revocation with the CLI reaches the gate", func(t *testing.T) {
		id, raw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "7d")
		req := eaRequest("POST", "/octo-org/app.git/git-upload-pack", eaBasic("bob", raw))
		g.waitAllowed(t, raw)
		_, _ = g.check(t, req) // cached
		runCLI(t, g.bin, nil, "token", "revoke", "--store", g.store, id)
		poll(t, 3*time.Second, "the revocation to reach the gate", func() bool {
			_, got := g.check(t, req)
			return got.status == 401
		})
	})

	t.Run("pruning and vacuuming the store leaves a current sidecar following it", func(t *testing.T) {
		out := runCLI(t, g.bin, nil, "store", "prune-changes", "--store", g.store, "--keep", "1", "--vacuum", "--output", "json")
		var pruned struct {
			Removed       int64 `json:"removed"`
			PrunedThrough int64 `json:"pruned_through"`
		}
		if err := json.Unmarshal([]byte(out), &pruned); err != nil || pruned.Removed == 0 || pruned.PrunedThrough == 0 {
			t.Fatalf("prune-changes: %v: %s", err, out)
		}
		id, raw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "7d")
		g.waitAllowed(t, raw)
		runCLI(t, g.bin, nil, "token", "revoke", "--store", g.store, id)
		req := eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", raw))
		poll(t, 3*time.Second, "the revocation to reach the gate after the prune", func() bool {
			_, got := g.check(t, req)
			return got.status == 401
		})
	})

	t.Run("a sidecar the prune left behind loads the store afresh", func(t *testing.T) {
		oldID, oldRaw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "7d")
		oldReq := eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", oldRaw))
		g.waitAllowed(t, oldRaw)
		_, _ = g.check(t, oldReq) // cached
		// Stopped, the sidecar cannot follow: a token created, one revoked,
		// and the log pruned past both.
		if err := g.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				_ = g.cmd.Process.Signal(syscall.SIGCONT)
			}
		}()
		_, newRaw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "7d")
		runCLI(t, g.bin, nil, "token", "revoke", "--store", g.store, oldID)
		runCLI(t, g.bin, nil, "store", "prune-changes", "--store", g.store, "--keep", "1")
		if err := g.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		stopped = false
		newReq := eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", eaBasic("bob", newRaw))
		poll(t, 5*time.Second, "the new token allowed and the revoked one refused", func() bool {
			_, fresh := g.check(t, newReq)
			_, revoked := g.check(t, oldReq)
			return fresh.status == 200 && revoked.status == 401
		})
		if !strings.Contains(g.output.String(), "the change log was pruned past the index, which loaded the store afresh") {
			t.Error("the sidecar did not log the load")
		}
		resp, err := http.Get("http://" + g.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(body, []byte("\nopa_pat_index_reloads_total 1\n")) {
			t.Errorf("/metrics: want opa_pat_index_reloads_total 1, got %s", grepLines(body, "opa_pat_index_reloads_total"))
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + g.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`opa_pat_extauthz_checks_total{result="allowed",status="200"}`,
			`opa_pat_extauthz_checks_total{result="denied",status="401"}`,
			`opa_pat_extauthz_check_duration_seconds_bucket`,
			`opa_pat_extauthz_errors_total{reason="evaluation"} 0`,
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("decision logs carry no credential", func(t *testing.T) {
		poll(t, 5*time.Second, "decision logs", func() bool { return strings.Contains(g.output.String(), `"decision_id"`) })
		logs := g.output.String()
		for _, raw := range []string{classic, forever, publicOnly, fg, revoked, unknown} {
			if strings.Contains(logs, raw) {
				t.Fatal("the output carries a raw token")
			}
			for _, user := range []string{"bob", "x-access-token"} {
				if strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte(user+":"+raw))) {
					t.Fatal("the output carries a Basic credential")
				}
			}
		}
		if !strings.Contains(logs, `"/input/attributes/request/http/headers/authorization"`) {
			t.Error("decision logs do not say the Authorization header was erased")
		}
	})
}

// The gate refuses a push of any size alike: the probe and the chunked POST
// of a push over 1 MiB are two Checks with the same answer.
// The sidecar serves Envoy on a Unix socket (addr unix:///path) as on TCP,
// and removes the socket when it stops.
func TestExtAuthzUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gate.sock")
	g := startGateOn(t, "unix://"+sock)
	_, raw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "30d")
	g.waitAllowed(t, raw)
	_, got := g.check(t, eaRequest("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", nil))
	if got.status != 401 || got.headers["www-authenticate"] != `Basic realm="opa-pat"` {
		t.Fatalf("without credentials: got %d %v, want 401 with the Basic challenge", got.status, got.headers)
	}
	if !strings.Contains(g.output.String(), `ext_authz gRPC server listening on unix://`+sock) {
		t.Fatalf("the start-up log does not name the socket:\n%s", g.output.String())
	}

	if err := g.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the sidecar to remove its socket", func() bool {
		_, err := os.Lstat(sock)
		return os.IsNotExist(err)
	})
}

func TestExtAuthzLargePushProbe(t *testing.T) {
	g := startGate(t)
	_, raw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--expires-in", "30d")
	g.waitAllowed(t, raw)
	probe := eaRequest("POST", "/octo-org/app.git/git-receive-pack", map[string]string{
		"authorization": eaBasic("bob", raw)["authorization"], "content-length": "4", "content-type": "application/x-git-receive-pack-request",
	})
	chunked := eaRequest("POST", "/octo-org/app.git/git-receive-pack", map[string]string{
		"authorization": eaBasic("bob", raw)["authorization"], "transfer-encoding": "chunked", "content-type": "application/x-git-receive-pack-request",
	})
	for _, req := range []*authv3.CheckRequest{probe, chunked} {
		if _, got := g.check(t, req); got.status != 200 {
			t.Fatalf("got %d, want 200", got.status)
		}
	}
}

// examples/envoy.yaml is a valid Envoy bootstrap (Envoy's own protos and
// their validation rules) whose ext_authz filter points at the gate.
func TestExtAuthzEnvoyExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := envoyBootstrap(t, raw)
	hcm := &hcmv3.HttpConnectionManager{}
	if err := bootstrap.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	authz := &extauthzv3.ExtAuthz{}
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(authz); err != nil {
		t.Fatal(err)
	}
	if authz.GetFailureModeAllow() || authz.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "opa_pat" || authz.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		t.Fatalf("ext_authz filter: %s", protojson.Format(authz))
	}
	if authz.GetWithRequestBody() != nil {
		t.Fatal("the filter buffers every body; only Git LFS batch requests need theirs")
	}
	// The first route hands Git LFS batch bodies to the gate, and only those.
	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	perRoute := &extauthzv3.ExtAuthzPerRoute{}
	if err := routes[0].GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"].UnmarshalTo(perRoute); err != nil {
		t.Fatalf("the LFS route's ext_authz settings: %v", err)
	}
	body := perRoute.GetCheckSettings().GetWithRequestBody()
	if body.GetMaxRequestBytes() == 0 || !body.GetAllowPartialMessage() {
		t.Fatalf("the LFS route's with_request_body: %s", protojson.Format(perRoute))
	}
	re := regexp.MustCompile(routes[0].GetMatch().GetSafeRegex().GetRegex())
	for path, want := range map[string]bool{
		"/octo-org/app.git/info/lfs/objects/batch": true,
		"/octo-org/app/info/lfs/objects/batch":     true,
		"/octo-org/app.git/git-receive-pack":       false,
		"/octo-org/app.git/info/lfs/locks":         false,
	} {
		if re.MatchString(path) != want {
			t.Errorf("the LFS route matches %s: %v, want %v", path, !want, want)
		}
	}
}

// grepLines returns the lines of b that contain s.
// The commented-out pipe address of examples/envoy.yaml (the gate on a Unix
// socket, docs/envoy.md) is a valid Envoy address for the gate's cluster.
func TestExtAuthzEnvoyExamplePipe(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tcp := regexp.MustCompile(`# (pipe: \{path: [^}]+\})\n\s*socket_address: \{address: 127\.0\.0\.1, port_value: 9191\}`)
	if !tcp.Match(raw) {
		t.Fatal("examples/envoy.yaml: no commented-out pipe address above the gate's socket address")
	}
	bootstrap := envoyBootstrap(t, tcp.ReplaceAll(raw, []byte("$1")))
	for _, c := range bootstrap.GetStaticResources().GetClusters() {
		if c.GetName() != "opa_pat" {
			continue
		}
		addr := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress()
		if got := addr.GetPipe().GetPath(); got != "/run/opa-pat/gate.sock" {
			t.Fatalf("the gate's address: %s", protojson.Format(addr))
		}
		return
	}
	t.Fatal("no opa_pat cluster")
}

// envoyBootstrap reads an Envoy bootstrap in YAML with Envoy's protos and
// checks it with their validation rules.
func envoyBootstrap(t *testing.T, raw []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var bootstrap bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bootstrap); err != nil {
		t.Fatalf("examples/envoy.yaml: %v", err)
	}
	if err := bootstrap.ValidateAll(); err != nil {
		t.Fatalf("examples/envoy.yaml: %v", err)
	}
	return &bootstrap
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestDecisionLogMaskedWithoutPolicy runs a sidecar that has no policy yet
// (a bundle server that does not answer at start, say): every decision is
// undefined and denies, and the decision log still holds no raw token,
// because the plugin keeps the mask in OPA's store until a bundle brings
// its own. Its token_prefixes have no "_": that copy of the mask knows them
// too (pat.token_prefixes), and keeps out a token of theirs that is not the
// event's credential, in a header or an ad-hoc query.
func TestDecisionLogMaskedWithoutPolicy(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "pat.db")
	runCLI(t, bin, nil, "store", "import", "--store", store, writeFile(t, dir, "world.json", eaWorld))
	grpcAddr, api := freeAddr(t), freeAddr(t)
	config := writeFile(t, dir, "config.yaml", `
plugins:
  pat:
    store: {path: "`+store+`"}
    ext_authz: {addr: "`+grpcAddr+`"}
    token_prefixes: {classic: acme, fine_grained: acmefg}
decision_logs:
  console: true
`)
	var output syncBuffer
	cmd := exec.Command(bin, "run", "--server", "--addr", api, "--config-file", config, "--log-format", "json")
	cmd.Env = append(os.Environ(), "OPA_PAT_STDERR_REDACTION=off") // the mask, not the stderr filter
	cmd.Stdout, cmd.Stderr = &output, &output
	startProcess(t, cmd, 10*time.Second, output.String)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	poll(t, 30*time.Second, "the ext_authz server to serve", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})

	custom, err := token.Generate(token.KindClassic, token.Prefixes{Classic: "acme", FineGrained: "acmefg"})
	if err != nil {
		t.Fatal(err)
	}
	// The ad-hoc query first: it is dropped, so the two events after it are the log's two.
	r, err := http.Post("http://"+api+"/v1/query", "application/json", strings.NewReader(`{"query": "t := pat.token(\"`+custom+`\")"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(b), `"well_formed":true`) {
		t.Fatalf("ad-hoc query of a token of the prefix acme: %s %s", r.Status, b)
	}

	const raw = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	resp, err := client.Check(t.Context(), eaRequest("GET", "/repos/octo-org/app?access%5Ftoken="+raw, map[string]string{"authorization": "Bearer " + raw, "x-note": custom}))
	if err != nil {
		t.Fatal(err)
	}
	if got := eaRead(t, resp); got.status != 500 {
		t.Fatalf("Check without a policy: %+v", got)
	}
	body := `{"input": {"credential": {"type": "pat", "token": "` + raw + `"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "read"}}`
	r, err = http.Post("http://"+api+"/v1/data/pat/allow", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || strings.Contains(string(b), `"result"`) {
		t.Fatalf("query without a policy: %s %s", r.Status, b)
	}
	poll(t, 5*time.Second, "both decisions in the log", func() bool {
		return strings.Count(output.String(), `"msg":"Decision Log"`) >= 2
	})
	logs := output.String()
	if strings.Contains(logs, raw) || strings.Contains(logs, custom) {
		t.Fatalf("a raw token is in the log:\n%s", logs)
	}
	if n := strings.Count(logs, `"msg":"Decision Log"`); n != 2 {
		t.Errorf("%d decisions in the log, want 2 (the ad-hoc query dropped):\n%s", n, logs)
	}
	for _, erased := range []string{`"/input/credential/token"`, `"/input/attributes/request/http/headers/authorization"`, `"/input/attributes/request/http/headers/x-note"`} {
		if !strings.Contains(logs, erased) {
			t.Errorf("the log does not say %s was erased:\n%s", erased, logs)
		}
	}
}

// TestDecisionLogCustomPrefixes runs a gate whose token_prefixes have no "_"
// (acme, acmefg), which GitHub's shape of a token does not show: the
// decision log still holds no token of theirs, the event's credential or
// another one, in a header of no credential name, the request's id (also in
// custom.request_id), its body or a direct input's other field; an ad-hoc
// query that names one is dropped. A word that starts with the prefix stays.
func TestDecisionLogCustomPrefixes(t *testing.T) {
	g := startGateWith(t, freeAddr(t), "token_prefixes: {classic: acme, fine_grained: acmefg}")
	_, raw := g.token(t, "--user", "bob", "--kind", "classic", "--scope", "repo", "--no-expiry")
	_, other := g.token(t, "--user", "alice", "--kind", "classic", "--scope", "repo", "--no-expiry")
	for _, tok := range []string{raw, other} {
		if !strings.HasPrefix(tok, "acme") || strings.Contains(tok, "_") {
			t.Fatalf("token create: %q is not a token of the prefix acme", tok)
		}
	}
	g.waitAllowed(t, raw)

	// (b) An ad-hoc query that names a token of the prefix: answered, not logged.
	post := func(path, body, want string) {
		t.Helper()
		resp, err := http.Post("http://"+g.api+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Fatalf("POST %s: %s %.300s", path, resp.Status, b)
		}
	}
	post("/v1/query", `{"query": "t := pat.token(\"`+other+`\")"}`, `"well_formed":true`)

	// (a) Another token of the prefix where no credential is named.
	req := eaRequest("POST", "/repos/octo-org/app/issues", map[string]string{
		"authorization": "Bearer " + raw,
		"x-note":        other,
		"x-request-id":  other,
		"x-org":         "acmecorp",
	})
	req.Attributes.Request.Http.Id = other
	req.Attributes.Request.Http.Body = `{"title": "rotate ` + other + `"}`
	if _, got := g.check(t, req); got.status != 200 {
		t.Fatalf("Check with the token: %+v", got)
	}
	post("/v1/data/pat/decision", `{"input": {"credential": {"type": "pat", "token": "`+raw+`"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "read", "note": "`+other+`"}}`, `"allow":true`)

	poll(t, 5*time.Second, "the direct decision in the log", func() bool {
		return strings.Contains(g.output.String(), `"path":"pat/decision"`)
	})
	logs := g.output.String()
	for name, tok := range map[string]string{"the credential": raw, "the other token": other} {
		if strings.Contains(logs, tok) {
			t.Errorf("%s is in the decision log:\n%s", name, grepLines([]byte(logs), tok))
		}
	}
	for _, want := range []string{
		`"/input/attributes/request/http/headers/x-note"`, `"/input/attributes/request/http/id"`,
		`"/input/attributes/request/http/body"`, `"/input/note"`, `"request_id":"[REDACTED]"`, `"x-org":"acmecorp"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the decision log has no %s:\n%s", want, grepLines([]byte(logs), "Decision Log"))
		}
	}
}
