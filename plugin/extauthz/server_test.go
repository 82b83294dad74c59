package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	_ "github.com/opa-pat/opa-pat/plugin/builtins" // pat.token, used by the envoy policy
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging/test"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The raw tokens of the stub policy. They must never show in a response or
// a decision-log line.
const (
	goodToken    = "ghp_goodGOODgoodGOODgoodGOODgood000000"
	blockedToken = "ghp_blockedBLOCKEDblockedBLOCKED000000"
)

// stubPolicy stands in for package pat: it allows reads of octo-org with
// goodToken, blocks blockedToken, and knows no other token.
var stubPolicy = `package pat

decision := {"allow": true, "status": 200, "reasons": [], "message": null, "documentation_url": null,
	"token_id": 42, "kind": "fine_grained", "user": "bob", "expires_at_ns": 1893456000000000000} if {
	input.credential.token == "` + goodToken + `"
	input.resource.owner == "octo-org"
	input.action == "read"
}

decision := {"allow": false, "status": 403, "reasons": ["Resource not accessible by personal access token"],
	"message": "Resource not accessible by personal access token",
	"documentation_url": "https://docs.github.com/rest/overview/permissions-required-for-fine-grained-personal-access-tokens",
	"token_id": 42, "kind": "fine_grained", "user": "bob"} if {
	input.credential.token == "` + goodToken + `"
	input.action == "write"
}

decision := {"allow": false, "status": 404, "reasons": ["not visible"], "message": "Not Found",
	"documentation_url": "https://docs.github.com/rest", "token_id": 42, "kind": "fine_grained", "user": "bob"} if {
	input.credential.token == "` + goodToken + `"
	input.resource.owner != "octo-org"
	input.action == "read"
}

decision := {"allow": false, "status": 403, "reasons": ["octo-org forbids access via a personal access token (classic)"],
	"message": "octo-org forbids access via a personal access token (classic).",
	"documentation_url": "https://docs.github.com/x", "token_id": 43, "kind": "classic", "user": "eve",
	"expires_at_ns": null} if {
	input.credential.token == "` + blockedToken + `"
}

decision := {"allow": false, "status": 401, "reasons": ["the token is not known"], "message": "Bad credentials",
	"documentation_url": "https://docs.github.com/rest", "token_id": null, "kind": null, "user": null} if {
	not input.credential.token in {"` + goodToken + `", "` + blockedToken + `"}
}
`

func repoFile(t testing.TB, rel string) string {
	t.Helper()
	bs, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(bs)
}

type fixture struct {
	manager  *plugins.Manager
	server   *Server
	client   authv3.AuthorizationClient
	conn     *grpc.ClientConn
	registry *prometheus.Registry
	console  *test.Logger
	logger   *test.Logger
}

// newFixture starts a real plugins.Manager (in-memory store, the envoy
// mapping policy, the decision-log mask, the stub pat policy, console
// decision logs) and a real gate on a free loopback port.
func newFixture(t testing.TB, config string) *fixture {
	return newFixtureLogs(t, config, true)
}

func newFixtureLogs(t testing.TB, config string, decisionLogs bool, opts ...Option) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{registry: prometheus.NewRegistry(), console: test.New(), logger: test.New()}
	m, err := plugins.New([]byte(`{}`), "test", inmem.New(),
		plugins.WithPrometheusRegister(f.registry),
		plugins.ConsoleLogger(f.console),
		plugins.Logger(f.logger),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if decisionLogs {
		logsConfig, err := logs.NewConfigBuilder().WithBytes([]byte(`{"console": true}`)).Parse()
		if err != nil {
			t.Fatal(err)
		}
		m.Register(logs.Name, logs.New(logsConfig, m))
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(context.Background()) })
	f.manager = m
	if os.Getenv("OPA_PAT_TEST_EVALUATOR") != "topdown" {
		// As the pat plugin does by default (evaluator: irvm).
		t.Cleanup(irvm.SetDefault(m.Store))
	}
	f.putPolicies(t, map[string]string{
		"pat/envoy/envoy.rego": repoFile(t, "rego/pat/envoy/envoy.rego"),
		"system/log/log.rego":  repoFile(t, "rego/system/log/log.rego"),
		"pat/stub.rego":        stubPolicy,
	})

	cfg, err := ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	f.server = New(m, cfg, opts...)
	if err := f.server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.server.Stop(context.Background()) })

	f.conn, err = grpc.NewClient(f.server.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	f.client = authv3.NewAuthorizationClient(f.conn)
	return f
}

func (f *fixture) putPolicies(t testing.TB, modules map[string]string) {
	t.Helper()
	ctx := t.Context()
	err := storage.Txn(ctx, f.manager.Store, storage.WriteParams, func(txn storage.Transaction) error {
		for id, src := range modules {
			if err := f.manager.Store.UpsertPolicy(ctx, txn, id, []byte(src)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func httpCheck(method, target string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 53122}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "req-1", Method: method, Path: target, Host: "git.example.com", Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}}
}

func hdr(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		Append:       wrapperspb.Bool(false),
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func denied(status typev3.StatusCode, body string, headers ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: status}, Headers: headers, Body: body,
		}},
	}
}

var (
	jsonType  = hdr("content-type", "application/json; charset=utf-8")
	challenge = hdr("www-authenticate", `Basic realm="opa-pat"`)
)

// allowedBob is the answer for the stub policy's good token: OK, with its
// id and user for the upstream and its expiry for the client.
func allowedBob() *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:              []*corev3.HeaderValueOption{hdr("x-pat-token-id", "42"), hdr("x-pat-user", "bob")},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hdr("GitHub-Authentication-Token-Expiration", "2030-01-01 00:00:00 UTC")},
		}},
	}
}

func basicAuth(user, password string) map[string]string {
	return map[string]string{"authorization": "Basic " + b64(user+":"+password)}
}

func TestCheck(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	tests := []struct {
		note string
		req  *authv3.CheckRequest
		want *authv3.CheckResponse
	}{
		{
			note: "git clone without credentials gets the Basic challenge",
			req:  httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", map[string]string{"user-agent": "git/2.45.0"}),
			want: denied(typev3.StatusCode_Unauthorized, `{"documentation_url":"https://docs.github.com/rest","message":"Requires authentication"}`, jsonType, challenge),
		},
		{
			note: "git clone with the token as password",
			req:  httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken)),
			want: allowedBob(),
		},
		{
			note: "git fetch pack, client-sent x-pat-* headers removed or overwritten",
			req: httpCheck("POST", "/octo-org/app.git/git-upload-pack", map[string]string{
				"authorization": "Basic " + b64("bob:"+goodToken), "x-pat-user": "mallory", "x-pat-admin": "1",
				"x_pat_user": "mallory", "x-pat_token_id": "1", "x-patron": "kept",
			}),
			want: &authv3.CheckResponse{
				Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
					Headers:              []*corev3.HeaderValueOption{hdr("x-pat-token-id", "42"), hdr("x-pat-user", "bob")},
					HeadersToRemove:      []string{"x-pat-admin", "x-pat_token_id", "x_pat_user"},
					ResponseHeadersToAdd: []*corev3.HeaderValueOption{hdr("GitHub-Authentication-Token-Expiration", "2030-01-01 00:00:00 UTC")},
				}},
			},
		},
		{
			note: "git push with a read-only token",
			req:  httpCheck("POST", "/octo-org/app.git/git-receive-pack", basicAuth("bob", goodToken)),
			want: denied(typev3.StatusCode_Forbidden, `{"documentation_url":"https://docs.github.com/rest/overview/permissions-required-for-fine-grained-personal-access-tokens","message":"Resource not accessible by personal access token"}`, jsonType),
		},
		{
			note: "REST read of another owner's repository",
			req:  httpCheck("GET", "/api/v3/repos/other-org/app/contents/README.md", map[string]string{"authorization": "Bearer " + goodToken}),
			want: denied(typev3.StatusCode_NotFound, `{"documentation_url":"https://docs.github.com/rest","message":"Not Found"}`, jsonType),
		},
		{
			note: "blocked by policy",
			req:  httpCheck("GET", "/repos/octo-org/app/issues", map[string]string{"authorization": "token " + blockedToken}),
			want: denied(typev3.StatusCode_Forbidden, `{"documentation_url":"https://docs.github.com/x","message":"octo-org forbids access via a personal access token (classic)."}`, jsonType),
		},
		{
			note: "unknown token",
			req:  httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer ghp_unknown"}),
			want: denied(typev3.StatusCode_Unauthorized, `{"documentation_url":"https://docs.github.com/rest","message":"Bad credentials"}`, jsonType, challenge),
		},
		{
			note: "unknown path",
			req:  httpCheck("GET", "/user/repos", map[string]string{"authorization": "Bearer " + goodToken}),
			want: denied(typev3.StatusCode_NotFound, `{"documentation_url":"https://docs.github.com/rest","message":"Not Found"}`, jsonType),
		},
		{
			note: "undecodable path",
			req:  httpCheck("GET", "/repos/octo-org/%zz", map[string]string{"authorization": "Bearer " + goodToken}),
			want: &authv3.CheckResponse{
				Status: &rpcstatus.Status{Code: int32(code.Code_INVALID_ARGUMENT)},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
					Status:  &typev3.HttpStatus{Code: typev3.StatusCode_BadRequest},
					Headers: []*corev3.HeaderValueOption{jsonType},
					Body:    `{"message":"Bad Request","documentation_url":"https://docs.github.com/rest"}`,
				}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.note, func(t *testing.T) {
			got, err := f.client.Check(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if id := got.GetDynamicMetadata().GetFields()["decision_id"].GetStringValue(); len(id) != 36 && tc.want.GetDeniedResponse().GetStatus().GetCode() != typev3.StatusCode_BadRequest {
				t.Errorf("dynamic metadata: want a decision_id, got %v", got.GetDynamicMetadata())
			}
			got.DynamicMetadata = nil
			if !proto.Equal(got, tc.want) {
				t.Fatalf("response:\ngot  %s\nwant %s", protojson.Format(got), protojson.Format(tc.want))
			}
			for _, tok := range []string{goodToken, blockedToken} {
				if strings.Contains(protojson.Format(got), tok) {
					t.Fatalf("the response carries a raw token")
				}
			}
		})
	}

	t.Run("decision log masks credentials", func(t *testing.T) {
		entries := f.console.Entries()
		if len(entries) != len(tests)-1 { // every check but the undecodable one
			t.Fatalf("decision log: got %d entries, want %d", len(entries), len(tests)-1)
		}
		for _, e := range entries {
			bs, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{goodToken, blockedToken, b64("x-access-token:" + goodToken), b64("bob:" + goodToken)} {
				if strings.Contains(string(bs), tok) {
					t.Fatalf("decision log carries a credential: %s", bs)
				}
			}
		}
		// The masked event still says what was decided.
		last, _ := json.Marshal(entries[len(entries)-1].Fields)
		for _, want := range []string{`"path":"pat/envoy/response"`, `"decision_id":`, `"erased":["/input/attributes/request/http/headers/authorization"]`} {
			if !strings.Contains(string(last), want) {
				t.Errorf("decision log entry lacks %s: %s", want, last)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		want := map[string]float64{
			`opa_pat_extauthz_checks_total{result="allowed",status="200"}`: 2,
			`opa_pat_extauthz_checks_total{result="denied",status="401"}`:  2,
			`opa_pat_extauthz_checks_total{result="denied",status="403"}`:  2,
			`opa_pat_extauthz_checks_total{result="denied",status="404"}`:  2,
			`opa_pat_extauthz_checks_total{result="error",status="400"}`:   1,
			`opa_pat_extauthz_errors_total{reason="bad_request"}`:          1,
			`opa_pat_extauthz_errors_total{reason="evaluation"}`:           0,
			`opa_pat_extauthz_check_duration_seconds_count`:                9,
		}
		got := gather(t, f.registry)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %v, want %v", k, got[k], v)
			}
		}
	})
}

func b64(s string) string {
	return strings.TrimSpace(base64Std(s))
}

// gather flattens the registry into "name{labels}" -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestCheckPolicyChange(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	req := httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken})
	got, err := f.client.Check(t.Context(), req)
	if err != nil || got.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("before: got %v, %v", got, err)
	}

	// A new policy activates: the prepared query is rebuilt, no restart.
	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": false, "status": 403, "reasons": ["closed"], "message": "closed for maintenance"}
`})
	got, err = f.client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDeniedResponse().GetBody() != `{"documentation_url":"https://docs.github.com/rest","message":"closed for maintenance"}` {
		t.Fatalf("after: got %s", protojson.Format(got))
	}
}

func TestCheckErrorsDeny(t *testing.T) {
	tests := []struct {
		note   string
		policy string
		reason string
	}{
		{
			note:   "evaluation error",
			policy: "package pat\n\ndecision := {\"allow\": true} if input.action\n\ndecision := {\"allow\": false} if input.action\n",
			reason: "evaluation",
		},
		{
			note:   "undefined decision",
			policy: "package pat\n\ndecision := {\"allow\": true} if false\n",
			reason: "undefined",
		},
	}
	for _, tc := range tests {
		t.Run(tc.note, func(t *testing.T) {
			f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
			f.putPolicies(t, map[string]string{"pat/stub.rego": tc.policy})
			req := httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken})
			got, err := f.client.Check(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			got.DynamicMetadata = nil
			want := errorResponse(500, code.Code_INTERNAL, "Internal Server Error")
			if !proto.Equal(got, want) {
				t.Fatalf("got %s, want %s", protojson.Format(got), protojson.Format(want))
			}
			m := gather(t, f.registry)
			if m[`opa_pat_extauthz_errors_total{reason="`+tc.reason+`"}`] != 1 || m[`opa_pat_extauthz_checks_total{result="error",status="500"}`] != 1 {
				t.Fatalf("metrics: %v", m)
			}
		})
	}
}

func TestCustomDecisionPath(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0", "path": "envoy/authz/allow"}`)
	f.putPolicies(t, map[string]string{"envoy/authz.rego": `package envoy.authz

default allow := false

allow if input.attributes.request.http.method == "GET"
`})
	for method, want := range map[string]int32{"GET": int32(code.Code_OK), "POST": int32(code.Code_PERMISSION_DENIED)} {
		got, err := f.client.Check(t.Context(), httpCheck(method, "/anything", nil))
		if err != nil {
			t.Fatal(err)
		}
		if got.GetStatus().GetCode() != want {
			t.Fatalf("%s: got %s", method, protojson.Format(got))
		}
	}
}

func TestHealthAndStop(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0", "shutdown_timeout": "1s"}`)
	hc := healthpb.NewHealthClient(f.conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q: got %v, %v", svc, resp, err)
		}
	}
	if !f.server.Serving() {
		t.Fatal("Serving: want true")
	}

	addr := f.server.Addr()
	f.server.Stop(t.Context())
	if f.server.Serving() || f.server.Addr() != "" {
		t.Fatal("after Stop: still serving")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := f.client.Check(ctx, httpCheck("GET", "/", nil), grpc.WaitForReady(false)); err == nil {
		t.Fatal("after Stop: Check answered")
	}

	// Started again on the same address, it serves again.
	f.server.cfg.Addr, f.server.cfg.address = addr, addr
	if err := f.server.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: health %v, %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartBindError(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	cfg, err := ParseConfig([]byte(`{"addr": "` + f.server.Addr() + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = New(f.manager, cfg).Start(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("ext_authz: listening on %q: ", f.server.Addr())) {
		t.Fatalf("got %v", err)
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tokenFound answers pat.token with {"found": known}, known true until the
// test changes it, and restores an unready store after the test.
func tokenFound(t *testing.T) *atomic.Bool {
	known := new(atomic.Bool)
	known.Store(true)
	topdown.RegisterBuiltinFunc("pat.token", func(_ topdown.BuiltinContext, _ []*ast.Term, iter func(*ast.Term) error) error {
		return iter(ast.ObjectTerm(ast.Item(ast.StringTerm("found"), ast.BooleanTerm(known.Load()))))
	})
	t.Cleanup(func() {
		topdown.RegisterBuiltinFunc("pat.token", func(topdown.BuiltinContext, []*ast.Term, func(*ast.Term) error) error {
			return errors.New("pat: token store not ready")
		})
	})
	return known
}

// httpStatus sends a Check and returns the HTTP status Envoy would answer
// with: the denial's, or 200 for an OK.
func (f *fixture) httpStatus(t *testing.T, req *authv3.CheckRequest) int32 {
	t.Helper()
	resp, err := f.client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if dr := resp.GetDeniedResponse(); dr != nil {
		return int32(dr.GetStatus().GetCode())
	}
	return 200
}

func TestDecisionCache(t *testing.T) {
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "1m"}}`, false)
	known := tokenFound(t)
	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": true, "token_id": 1, "expires_at_ns": null} if {
	pat.token(input.credential.token).found == true
	not input.resource.repository in closed
}

closed := {r | some r in data.closed}

decision := {"allow": false, "status": 401, "message": "Bad credentials"} if pat.token(input.credential.token).found == false

decision := {"allow": false, "status": 403, "message": "closed"} if input.resource.repository in closed
`})
	req := httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken})
	status := func() int32 {
		t.Helper()
		return f.httpStatus(t, req)
	}

	if got := status(); got != 200 {
		t.Fatalf("first: got %d; log: %v", got, f.logger.Entries())
	}
	known.Store(false) // the index changes, unseen by the cache...
	if got := status(); got != 200 {
		t.Fatalf("cached: got %d", got)
	}
	f.server.InvalidateCache() // ...until the plugin says so
	if got := status(); got != 401 {
		t.Fatalf("after InvalidateCache: got %d", got)
	}

	known.Store(true)
	f.server.InvalidateCache()
	if got := status(); got != 200 {
		t.Fatalf("again: got %d", got)
	}
	// Data written to the store drops the cache by itself.
	if err := storage.WriteOne(t.Context(), f.manager.Store, storage.AddOp, storage.MustParsePath("/closed"), []any{"app"}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != 403 {
		t.Fatalf("after a data change: got %d", got)
	}
}

// A cached allow is not used while what the built-ins answer from is not
// current (an index past store.max_staleness, invalid settings): the Check
// is evaluated, and denies as an uncached one does, at once rather than
// when the entry's ttl ends; that denial is not cached.
func TestDecisionCacheNotUsedWhileNotCurrent(t *testing.T) {
	var stale atomic.Bool
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "1m"}}`, false,
		WithCurrent(func(time.Time) bool { return !stale.Load() }))
	known := tokenFound(t)
	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": true, "token_id": 1, "expires_at_ns": null} if pat.token(input.credential.token).found == true

decision := {"allow": false, "status": 503, "message": "token store unavailable"} if pat.token(input.credential.token).found == false
`})
	req := httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken})
	for _, step := range []struct {
		note         string
		stale, known bool
		want         int32
	}{
		{note: "evaluated", known: true, want: 200},
		{note: "cached", want: 200},                   // the built-ins would deny; the entry answers
		{note: "not current", stale: true, want: 503}, // evaluated, not answered from the entry
		// The entry is still there: the denial made while not current was
		// not cached in its place, to outlive the outage.
		{note: "current again", want: 200},
	} {
		stale.Store(step.stale)
		known.Store(step.known)
		if got := f.httpStatus(t, req); got != step.want {
			t.Fatalf("%s: got %d, want %d", step.note, got, step.want)
		}
	}
	got := gather(t, f.registry)
	for k, v := range map[string]float64{
		`opa_pat_extauthz_decision_cache_lookups_total{result="hit"}`:  2,
		`opa_pat_extauthz_decision_cache_lookups_total{result="miss"}`: 2,
	} {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
}

// A cache hit answers with the answer built for the first Check, shared,
// unless the request carries x-pat-* headers of its own: those are listed
// for removal in an answer built for it, and the shared one stays as it was.
func TestDecisionCacheSharedAnswer(t *testing.T) {
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "1m"}}`, false)
	known := tokenFound(t)
	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": true, "token_id": 7, "expires_at_ns": null} if pat.token(input.credential.token).found == true

decision := {"allow": false, "status": 401, "message": "Bad credentials"} if pat.token(input.credential.token).found == false
`})
	check := func(headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		headers["authorization"] = "Bearer " + goodToken
		resp, err := f.client.Check(t.Context(), httpCheck("GET", "/repos/octo-org/app", headers))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	want := &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{hdr("x-pat-token-id", "7")},
		}},
	}
	if got := check(map[string]string{}); !proto.Equal(got, want) {
		t.Fatalf("first:\ngot  %v\nwant %v", got, want)
	}
	known.Store(false) // answered from the cache from here on
	if got := check(map[string]string{"accept": "*/*"}); !proto.Equal(got, want) {
		t.Fatalf("from the cache:\ngot  %v\nwant %v", got, want)
	}
	spoofed := proto.Clone(want).(*authv3.CheckResponse)
	spoofed.GetOkResponse().HeadersToRemove = []string{"x-pat-user"}
	if got := check(map[string]string{"x-pat-user": "mallory", "x-pat-token-id": "1"}); !proto.Equal(got, spoofed) {
		t.Fatalf("with the client's x-pat-* headers:\ngot  %v\nwant %v", got, spoofed)
	}
	if got := check(map[string]string{}); !proto.Equal(got, want) {
		t.Fatalf("the shared answer changed:\ngot  %v\nwant %v", got, want)
	}
	// One evaluation, three answers from the cache.
	got := gather(t, f.registry)
	for k, v := range map[string]float64{
		`opa_pat_extauthz_decision_cache_lookups_total{result="hit"}`:  3,
		`opa_pat_extauthz_decision_cache_lookups_total{result="miss"}`: 1,
		`opa_pat_extauthz_checks_total{result="allowed",status="200"}`: 4,
	} {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
}

func TestDecisionCacheExpiry(t *testing.T) {
	var version atomic.Int64
	c := newDecisionCache(time.Minute, 64, version.Load)
	now := time.Unix(1000, 0)
	k := cacheKey("GET", "/", "Bearer x", noOverrides, httpBody{})
	exp := ast.MustParseTerm(`{"allowed": true, "decision": {"expires_at_ns": 1000500000000}}`).Value
	c.put(k, outcome{decision: exp}, nil, c.generation(), now)
	if _, ok := c.get(k, now.Add(499*time.Millisecond)); !ok {
		t.Fatal("before the token expires: want a hit")
	}
	if _, ok := c.get(k, now.Add(500*time.Millisecond)); ok {
		t.Fatal("once the token expired: want a miss")
	}
	plain := ast.MustParseTerm(`{"allowed": false}`).Value
	c.put(k, outcome{decision: plain}, nil, c.generation(), now)
	if _, ok := c.get(k, now.Add(time.Minute)); ok {
		t.Fatal("after the ttl: want a miss")
	}
	gen := c.generation()
	c.Invalidate()
	c.put(k, outcome{decision: plain}, nil, gen, now) // decided before the invalidation
	if _, ok := c.get(k, now); ok {
		t.Fatal("a decision made before an invalidation must not be kept")
	}
	c.put(k, outcome{decision: plain}, nil, c.generation(), now)
	version.Add(1) // the token index applied a change
	if _, ok := c.get(k, now); ok {
		t.Fatal("a decision made at an older index version must not be used")
	}
	for i := range 1000 {
		c.put(cacheKey("GET", fmt.Sprint(i), "", noOverrides, httpBody{}), outcome{decision: plain}, nil, c.generation(), now)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].entries)
	}
	if n > 64+cacheShards {
		t.Fatalf("size: got %d entries, want at most %d", n, 64+cacheShards)
	}
}

// Each shard drops its expired and invalidated entries once a ttl, full or
// not; and an entry with a shared answer does not also keep the decision.
func TestDecisionCacheSweeps(t *testing.T) {
	var version atomic.Int64
	c := newDecisionCache(time.Minute, 100000, version.Load)
	now := time.Unix(1000, 0)
	decision := ast.MustParseTerm(`{"allowed": false}`).Value
	answer := &encodedAnswer{[]byte("an answer")}
	count := func() (n int) {
		for i := range c.shards {
			n += len(c.shards[i].entries)
		}
		return n
	}
	put := func(prefix string, n int, at time.Time) {
		for i := range n {
			c.put(cacheKey("GET", prefix+fmt.Sprint(i), "", noOverrides, httpBody{}), outcome{status: 403, decision: decision}, answer, c.generation(), at)
		}
	}
	put("/old/", 1000, now) // every shard sweeps (nothing yet) and next sweeps at now+1m
	if n := count(); n != 1000 {
		t.Fatalf("got %d entries, want 1000", n)
	}
	for i := range c.shards {
		for _, e := range c.shards[i].entries {
			if e.out.decision != nil || e.wire != answer || e.out.status != 403 {
				t.Fatalf("entry with an answer: got decision %v, answer %v, status %d", e.out.decision, e.wire, e.out.status)
			}
		}
	}
	put("/young/", 1000, now.Add(time.Second)) // no sweep is due
	if n := count(); n != 2000 {
		t.Fatalf("before a sweep is due: got %d entries, want 2000", n)
	}
	// A ttl on, the old entries have expired and go; the young stay.
	put("/new/", 1000, now.Add(time.Minute))
	if n := count(); n != 2000 {
		t.Fatalf("a ttl on: got %d entries, want the 1000 young and the 1000 new", n)
	}
	// Entries decided before the index changed go at the next sweep,
	// although they have not expired.
	put("/mid/", 1000, now.Add(time.Minute+30*time.Second))
	version.Add(1)
	put("/last/", 1000, now.Add(2*time.Minute))
	if n := count(); n != 1000 {
		t.Fatalf("after the index changed: got %d entries, want the 1000 last", n)
	}
}

// TestFailureHook: a server whose listener fails stops serving and says so
// through the hook (the pat plugin makes that an ERROR status); Stop after
// that is clean.
func TestFailureHook(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	cfg, err := ParseConfig([]byte(`{"addr": "127.0.0.1:0"}`))
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	s := New(f.manager, cfg, WithFailureHook(func(err error) { failed <- err }))
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !s.Serving() {
		t.Fatal("not serving after Start")
	}
	s.mu.Lock()
	lis := s.lis
	s.mu.Unlock()
	lis.Close()
	select {
	case err := <-failed:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("hook got %v; want the listener's %v", err, net.ErrClosed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failure hook was not called")
	}
	if s.Serving() {
		t.Fatal("still serving after the listener failed")
	}
	s.Stop(t.Context())

	// A stop through Stop is not a failure.
	s2 := New(f.manager, cfg, WithFailureHook(func(err error) { failed <- err }))
	if err := s2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2.Stop(t.Context())
	select {
	case err := <-failed:
		t.Fatalf("hook called on Stop: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// Every uncached Check makes a decision of its own; the server must not
// keep them. (The checks counter once kept one series per decision: the
// heap grew by about 2 KB a Check, without end.)
func TestCheckKeepsNoDecisions(t *testing.T) {
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "0s"}}`, false)
	allowed := httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken))
	anonymous := httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", map[string]string{"user-agent": "git/2.45.0"})
	for i := range 200 {
		req := allowed
		if i%2 == 1 {
			req = anonymous
		}
		if _, err := f.client.Check(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	f.server.metrics.mu.RLock()
	n := len(f.server.metrics.counts)
	f.server.metrics.mu.RUnlock()
	if n != 2 {
		t.Fatalf("the server keeps %d series after 200 Checks of two outcomes; want 2", n)
	}
}

// readOnlyCachedFixture is a gate with a one-minute decision cache over a
// policy that allows every read and refuses every write (403).
func readOnlyCachedFixture(t *testing.T) *fixture {
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "1m"}}`, false)
	tokenFound(t)
	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": true, "token_id": 1, "expires_at_ns": null} if input.action == "read"

decision := {"allow": false, "status": 403, "message": "read only"} if input.action == "write"
`})
	return f
}

// A body Envoy packs as bytes (raw_body, pack_as_bytes) is part of the cache
// key as a body is: a cached Git LFS download does not answer the upload
// that follows it with the same credentials, nor a public repository's
// creation the private one's.
func TestDecisionCacheRawBody(t *testing.T) {
	f := readOnlyCachedFixture(t)
	check := func(body string) int32 {
		t.Helper()
		req := httpCheck("POST", "/octo-org/app.git/info/lfs/objects/batch", map[string]string{
			"authorization": "Bearer " + goodToken, "content-type": "application/vnd.git-lfs+json",
		})
		req.GetAttributes().GetRequest().GetHttp().RawBody = []byte(body)
		return f.httpStatus(t, req)
	}
	for i, step := range []struct {
		body string
		want int32
	}{
		{`{"operation":"download"}`, 200},
		{`{"operation":"upload"}`, 403},
		{`{"operation":"download"}`, 200},
		{`{"operation":"upload"}`, 403},
	} {
		if got := check(step.body); got != step.want {
			t.Fatalf("Check %d, raw_body %s: got %d, want %d", i+1, step.body, got, step.want)
		}
	}
}

// A JSON body that escapes a lone UTF-16 surrogate, or whose bytes
// (raw_body) are not UTF-8, is read as none, as one with a key twice is:
// Go's reader reads U+FFFD there and other servers otherwise. A Git LFS
// batch then asks for write, which a read-only token is refused, and a
// REST body that holds "_method" is refused as a method override (Go
// would have read the key "_method\ud800" as "_method\ufffd", another
// server perhaps as _method). A surrogate pair is one character.
func TestJSONBodyLoneSurrogate(t *testing.T) {
	f := readOnlyCachedFixture(t)
	const batch, issues = "/octo-org/app.git/info/lfs/objects/batch", "/repos/octo-org/app/issues"
	const override = "Method overrides (X-HTTP-Method-Override, _method) are not accepted: send the request with its own method"
	for _, tc := range []struct {
		note, path, body string
		raw              bool
		status           int32
		message          string
	}{
		{note: "LFS: a lone surrogate", path: batch, body: `{"operation":"download","objects":[{"oid":"\ud800","size":3}]}`, status: 403, message: "read only"},
		{note: "LFS: a lone low surrogate in raw_body", path: batch, body: `{"operation":"download","objects":[{"oid":"\udc00x","size":3}]}`, raw: true, status: 403, message: "read only"},
		{note: "LFS: bytes that are not UTF-8 in raw_body", path: batch, body: "{\"operation\":\"download\",\"objects\":[{\"oid\":\"\xff\",\"size\":3}]}", raw: true, status: 403, message: "read only"},
		{note: "LFS: a pair", path: batch, body: `{"operation":"download","objects":[{"oid":"\ud83d\ude00","size":3}]}`, status: 200},
		{note: "REST: _method beside a lone surrogate", path: issues, body: `{"title":"x","_method\ud800":"DELETE"}`, status: 400, message: override},
		{note: "REST: a pair", path: issues, body: `{"title":"\ud83d\ude00"}`, status: 403, message: "read only"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			contentType := "application/json"
			if tc.path == batch {
				contentType = "application/vnd.git-lfs+json"
			}
			req := httpCheck("POST", tc.path, map[string]string{"authorization": "Bearer " + goodToken, "content-type": contentType})
			if h := req.GetAttributes().GetRequest().GetHttp(); tc.raw {
				h.RawBody = []byte(tc.body)
			} else {
				h.Body = tc.body
			}
			resp, err := f.client.Check(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			status, message := int32(200), ""
			if dr := resp.GetDeniedResponse(); dr != nil {
				var body struct {
					Message string `json:"message"`
				}
				if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil {
					t.Fatalf("the denial's body %q: %v", dr.GetBody(), err)
				}
				status, message = int32(dr.GetStatus().GetCode()), body.Message
			}
			if status != tc.status || message != tc.message {
				t.Fatalf("got %d %q, want %d %q", status, message, tc.status, tc.message)
			}
		})
	}
}

// A _method query parameter written as an array's (_method[], its
// brackets percent-encoded too, _method[0]), which PHP's and Node's qs
// parsers read as a list, is a method override: refused with a 400 through
// a real Check, whose query the gate decodes.
func TestMethodOverrideQueryArray(t *testing.T) {
	f := readOnlyCachedFixture(t)
	const override = "Method overrides (X-HTTP-Method-Override, _method) are not accepted: send the request with its own method"
	for _, query := range []string{"_method[]=DELETE", "%5Fmethod%5B%5D=DELETE", "a=1;_METHOD[0]=delete"} {
		t.Run(query, func(t *testing.T) {
			req := httpCheck("POST", "/repos/octo-org/app/issues?"+query, map[string]string{"authorization": "Bearer " + goodToken})
			resp, err := f.client.Check(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			dr := resp.GetDeniedResponse()
			if dr == nil {
				t.Fatal("allowed")
			}
			var body struct {
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil {
				t.Fatalf("the denial's body %q: %v", dr.GetBody(), err)
			}
			if got := dr.GetStatus().GetCode(); got != 400 || body.Message != override {
				t.Fatalf("got %d %q, want 400 %q", got, body.Message, override)
			}
		})
	}
}

// What decides a request beside its method, path, credential and body is in
// the cache key too: a cut-short body is not answered with the whole one's
// decision (nor the whole one with the cut-short one's), and a method
// override is not answered with the plain request's.
func TestDecisionCacheHeadersTheGateReads(t *testing.T) {
	f := readOnlyCachedFixture(t)
	batch := func(headers map[string]string) int32 {
		t.Helper()
		h := map[string]string{"authorization": "Bearer " + goodToken, "content-type": "application/vnd.git-lfs+json"}
		maps.Copy(h, headers)
		req := httpCheck("POST", "/octo-org/app.git/info/lfs/objects/batch", h)
		req.GetAttributes().GetRequest().GetHttp().Body = `{"operation":"download"}`
		return f.httpStatus(t, req)
	}
	partial := map[string]string{"x-envoy-auth-partial-body": "true"}
	for i, step := range []struct {
		headers map[string]string
		want    int32
	}{{nil, 200}, {partial, 403}, {nil, 200}, {partial, 403}} {
		if got := batch(step.headers); got != step.want {
			t.Fatalf("batch Check %d, %v: got %d, want %d", i+1, step.headers, got, step.want)
		}
	}

	repo := func(headers map[string]string) int32 {
		t.Helper()
		h := map[string]string{"authorization": "Bearer " + goodToken}
		maps.Copy(h, headers)
		return f.httpStatus(t, httpCheck("GET", "/repos/octo-org/app/issues", h))
	}
	for i, step := range []struct {
		headers map[string]string
		want    int32
	}{{nil, 200}, {map[string]string{"x-http-method-override": "DELETE"}, 400}, {map[string]string{"x-method-override": "POST"}, 400}, {nil, 200}} {
		if got := repo(step.headers); got != step.want {
			t.Fatalf("GET Check %d, %v: got %d, want %d", i+1, step.headers, got, step.want)
		}
	}
}

// The cache key covers what the policy reads of a body: a Git LFS batch
// request downloads or uploads by its body, with the same method, path and
// credentials.
func TestCacheKeyCoversTheBody(t *testing.T) {
	const batch = "/octo-org/app.git/info/lfs/objects/batch"
	lfs := "application/vnd.git-lfs+json"
	key := func(body, contentType, contentLength string) [32]byte {
		return cacheKey("POST", batch, "Basic eDp5", noOverrides, requestBody(body, headerList{{"content-type", contentType}, {"content-length", contentLength}}))
	}
	download := key(`{"operation":"download"}`, lfs, "24")
	for note, other := range map[string][32]byte{
		"another body":           key(`{"operation":"upload"}`, lfs, "22"),
		"no body":                key("", lfs, "24"),
		"another content type":   key(`{"operation":"download"}`, "text/plain", "24"),
		"another content length": key(`{"operation":"download"}`, lfs, "4096"),
		"a partial body": cacheKey("POST", batch, "Basic eDp5", noOverrides, requestBody(`{"operation":"download"}`,
			headerList{{"content-type", lfs}, {"content-length", "24"}, {"x-envoy-auth-partial-body", "true"}})),
	} {
		if other == download {
			t.Errorf("%s: same key as the download", note)
		}
	}
	if key(`{"operation":"download"}`, lfs, "24") != download {
		t.Error("the same request got another key")
	}
	// Without a body, the headers that say how to read one do not matter.
	if key("", lfs, "24") != key("", "text/plain", "") || key("", "", "") != cacheKey("POST", batch, "Basic eDp5", noOverrides, httpBody{}) {
		t.Error("requests without a body are keyed by their body's headers")
	}
}

var noOverrides [len(overrideHeaders)]string

// The cache key holds the method override headers, which the policy refuses
// a request for: a POST allowed from the cache must not answer the same POST
// with X-HTTP-Method-Override: DELETE.
func TestCacheKeyCoversMethodOverrides(t *testing.T) {
	plain := cacheKey("POST", "/repos/o/r", "Bearer x", methodOverrides(headerList{{"authorization", "Bearer x"}}), httpBody{})
	if plain != cacheKey("POST", "/repos/o/r", "Bearer x", noOverrides, httpBody{}) {
		t.Fatal("a request without overrides got another key")
	}
	for _, name := range append(overrideHeaders[:], "x_http_method_override", "x-http_method", "x_method-override") {
		k := cacheKey("POST", "/repos/o/r", "Bearer x", methodOverrides(headerList{{name, "DELETE"}}), httpBody{})
		if k == plain {
			t.Errorf("%s: same key as the request without it", name)
		}
	}
	if two := methodOverrides(headerList{{"x-http-method", "GET"}, {"x_http_method", "DELETE"}}); two[1] != "GET\x00DELETE\x00" {
		t.Errorf("two spellings: %q", two[1])
	}
	if methodOverrides(headerList{{"x-http-method", ""}}) == noOverrides {
		t.Error("an empty override counts as none")
	}
}

// rawBytes is a gRPC codec that sends a message's bytes as they are.
type rawBytes struct{}

func (rawBytes) Marshal(v any) ([]byte, error)   { return *(v.(*[]byte)), nil }
func (rawBytes) Unmarshal(b []byte, v any) error { *(v.(*[]byte)) = b; return nil }
func (rawBytes) Name() string                    { return "proto" }

// A request that is not a CheckRequest gRPC can decode never reaches a
// Check: gRPC answers INTERNAL, and the gate counts it.
func TestUndecodableRequestIsCounted(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	junk := []byte{0x0a, 0xff} // field 1, a length that runs past the end
	var out []byte
	err := f.conn.Invoke(t.Context(), "/envoy.service.auth.v3.Authorization/Check", &junk, &out, grpc.ForceCodec(rawBytes{}))
	if status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want INTERNAL", err)
	}
	// The gate counts the request before gRPC sends the error, but a full
	// run once read 0 here: the count is read again for a while before the
	// test gives up, so that only a count that never comes fails it.
	got := gather(t, f.registry)
	for deadline := time.Now().Add(2 * time.Second); got[`opa_pat_extauthz_errors_total{reason="decode"}`] == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		got = gather(t, f.registry)
	}
	if got[`opa_pat_extauthz_errors_total{reason="decode"}`] != 1 {
		t.Fatalf("errors_total{reason=\"decode\"}: got %v, want 1 (the call failed with %v)", got[`opa_pat_extauthz_errors_total{reason="decode"}`], err)
	}
	if got[`opa_pat_extauthz_check_duration_seconds_count`] != 0 {
		t.Fatal("an undecodable request was counted as a Check")
	}
}

// blockedCheck is a Check held in pat.token until free is called: a Check
// in flight while the server stops.
type blockedCheck struct {
	answered chan checkAnswer
	free     func()
}

type checkAnswer struct {
	resp *authv3.CheckResponse
	err  error
}

// startBlockedCheck sends a Check whose pat.token lookup waits for free,
// and returns once the Check is in that lookup.
func startBlockedCheck(t *testing.T, f *fixture) *blockedCheck {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free) // before the fixture stops the server: a blocked Check would hold it
	topdown.RegisterBuiltinFunc("pat.token", func(_ topdown.BuiltinContext, _ []*ast.Term, iter func(*ast.Term) error) error {
		once.Do(func() { close(entered) })
		<-release
		return iter(ast.ObjectTerm(ast.Item(ast.StringTerm("found"), ast.BooleanTerm(true))))
	})
	t.Cleanup(func() {
		free()
		topdown.RegisterBuiltinFunc("pat.token", func(topdown.BuiltinContext, []*ast.Term, func(*ast.Term) error) error {
			return errors.New("pat: token store not ready")
		})
	})

	f.putPolicies(t, map[string]string{"pat/stub.rego": `package pat

decision := {"allow": true, "token_id": 1, "expires_at_ns": null} if pat.token(input.credential.token).found
`})

	b := &blockedCheck{answered: make(chan checkAnswer, 1), free: free}
	go func() {
		resp, err := f.client.Check(t.Context(), httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken}))
		b.answered <- checkAnswer{resp, err}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the Check never reached pat.token")
	}
	return b
}

// wantOK fails unless the blocked Check got its OK answer.
func (b *blockedCheck) wantOK(t *testing.T) {
	t.Helper()
	a := <-b.answered
	if a.err != nil || a.resp.GetOkResponse() == nil {
		t.Fatalf("the Check in flight: %v, %v; want its OK answer", a.resp, a.err)
	}
}

// watchServing opens a health Watch of service on the fixture's connection
// and reads its first status, SERVING.
func watchServing(t *testing.T, f *fixture, service string) healthpb.Health_WatchClient {
	t.Helper()
	watch, err := healthpb.NewHealthClient(f.conn).Watch(t.Context(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := recvWithin(t, fmt.Sprintf("watch %q before Stop", service), watch); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch %q before Stop: %v, %v; want SERVING", service, resp, err)
	}
	return watch
}

// stopAsync runs Stop and closes the channel it returns when Stop returns,
// with how long it took in *took.
func stopAsync(ctx context.Context, f *fixture, took *time.Duration) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		start := time.Now()
		f.server.Stop(ctx)
		*took = time.Since(start)
		close(stopped)
	}()
	return stopped
}

// OPA stops plugins with a context that is already canceled when a signal
// ends the sidecar. Stop still drains: the health service says NOT_SERVING
// to a watcher, and a Check in flight gets its answer, within the shutdown
// timeout.
func TestStopDrainsWithCanceledContext(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0", "shutdown_timeout": "5s"}`)
	watch := watchServing(t, f, "")
	check := startBlockedCheck(t, f)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	var took time.Duration
	stopped := stopAsync(canceled, f, &took)
	wantWatch(t, "watch during Stop", watch, healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case <-stopped:
		t.Fatal("Stop returned with a Check in flight")
	case <-time.After(100 * time.Millisecond):
	}
	check.free()
	check.wantOK(t)
	<-stopped
}

// A health Watch open when Stop begins is told NOT_SERVING, then ends with
// UNAVAILABLE, for each service; nothing holds the drain after that.
func TestStopEndsHealthWatches(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0", "shutdown_timeout": "30s"}`)
	overall, authz := watchServing(t, f, ""), watchServing(t, f, serviceName)

	var took time.Duration
	stopped := stopAsync(t.Context(), f, &took)
	wantWatch(t, `watch ""`, overall, healthpb.HealthCheckResponse_NOT_SERVING)
	wantWatch(t, "watch "+serviceName, authz, healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop still waits 5s after the watches ended")
	}
	t.Logf("Stop took %v.", took)
	if took > 2*time.Second {
		t.Fatalf("Stop took %v; want well under the shutdown timeout (30s)", took)
	}
}

// A watcher that stays connected does not hold the drain until
// shutdown_timeout: Stop returns as soon as the Check in flight is answered,
// and that Check gets its OK answer.
func TestStopDrainsACheckInFlightWithAWatcherOpen(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0", "shutdown_timeout": "30s"}`)
	watch := watchServing(t, f, serviceName)
	check := startBlockedCheck(t, f)

	var took time.Duration
	stopped := stopAsync(t.Context(), f, &took)
	wantWatch(t, "watch during Stop", watch, healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case <-stopped:
		t.Fatal("Stop returned with a Check in flight")
	case <-time.After(300 * time.Millisecond):
	}
	check.free()
	check.wantOK(t)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop still waits 5s after the Check in flight was answered")
	}
	t.Logf("Stop took %v.", took)
	if took > 2*time.Second {
		t.Fatalf("Stop took %v; want well under the shutdown timeout (30s)", took)
	}
}

// The start line gives the collector's GOGC as the runtime has it, read
// without setting it.
func TestGOGC(t *testing.T) {
	old := debug.SetGCPercent(200)
	defer debug.SetGCPercent(old)
	if got := gogc(); got != "200" {
		t.Errorf("GOGC 200 read as %q", got)
	}
	debug.SetGCPercent(-1)
	if got := gogc(); got != "off" {
		t.Errorf("GOGC off read as %q", got)
	}
}
