package extauthz

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BenchmarkCheckStub measures one Check in process (no gRPC): input,
// evaluation of the envoy policy over the stub pat policy, answer, metrics.
func BenchmarkCheckStub(b *testing.B) {
	f := newFixtureLogs(b, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "0s"}}`, false)
	benchCheck(b, f, gitInfoRefs, basicAuth("x-access-token", goodToken))
}

// BenchmarkCheckPolicy measures one Check against the real policy
// (rego/pat), with the pat.* built-ins answered from Go maps the way the
// plugin's index answers them.
func BenchmarkCheckPolicy(b *testing.B) {
	for _, evaluator := range []string{"topdown", "irvm"} {
		b.Run("eval="+evaluator, func(b *testing.B) {
			b.Setenv("OPA_PAT_TEST_EVALUATOR", evaluator) // the fixture makes irvm the default unless told topdown
			f := newFixtureLogs(b, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "0s"}}`, false)
			setupPolicy(b, f)
			benchCheck(b, f, gitInfoRefs, basicAuth("x-access-token", "github_pat_bob_app"))
		})
	}
}

// BenchmarkCheckPolicyREST is BenchmarkCheckPolicy's irvm Check on REST
// reads: one whose last segment has a ".", which the gate also reads
// without its format (docs/envoy.md, "Lenient readings of an endpoint"),
// and one without.
func BenchmarkCheckPolicyREST(b *testing.B) {
	for _, target := range []string{"/repos/octo-org/app/contents/README.md", "/repos/octo-org/app/pulls/1"} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(target, "/repos/octo-org/app/"), "/", "-"), func(b *testing.B) {
			f := newFixtureLogs(b, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "0s"}}`, false)
			setupPolicy(b, f)
			benchCheck(b, f, target, map[string]string{"authorization": "Bearer github_pat_bob_app"})
		})
	}
}

const gitInfoRefs = "/octo-org/app.git/info/refs?service=git-upload-pack"

func setupPolicy(b testing.TB, f *fixture) {
	mods := map[string]string{}
	err := filepath.WalkDir(filepath.Join("..", "..", "rego"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		bs, err := os.ReadFile(path)
		mods[strings.TrimPrefix(filepath.ToSlash(path), "../../rego/")] = string(bs)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	mods["pat/stub.rego"] = "package pat_stub_unused\n"
	f.putPolicies(b, mods)
	var settings any
	_ = util.UnmarshalJSON([]byte(`{"settings": {"enterprises": {"acme": {"owners": ["erin"]}}, "organizations": {"octo-org": {"enterprise": "acme"}}}}`), &settings)
	if err := storage.WriteOne(b.Context(), f.manager.Store, storage.AddOp, storage.MustParsePath("/pat"), settings); err != nil {
		b.Fatal(err)
	}
	fakeBuiltins(b)
}

// benchCheck measures Checks as the gRPC server makes them: from the
// encoded request, through the handler gRPC calls (wire.go), to the answer.
func benchCheck(b *testing.B, f *fixture, target string, headers map[string]string) {
	wire := marshal(b, httpCheck("GET", target, headers))
	dec := func(v any) error { return v.(*wireCheck).in.decode(wire) }
	check := func() any {
		resp, err := checkHandler(f.server, b.Context(), dec, nil)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	// The first Check is a miss; the answer goes to gRPC as a message or,
	// when the cache keeps it, encoded (as it is sent).
	var resp *authv3.CheckResponse
	switch r := check().(type) {
	case *authv3.CheckResponse:
		resp = r
	case *encodedAnswer:
		resp = decodeAnswer(r)
	}
	if resp.GetStatus().GetCode() != int32(code.Code_OK) {
		b.Fatalf("%v", resp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		check()
	}
}

// fakeBuiltins answers pat.* from constant records (restored after the
// benchmark).
func fakeBuiltins(b testing.TB) {
	token := ast.MustParseTerm(`{"well_formed": true, "found": true, "kind": "fine_grained", "id": 20, "user": "bob", "name": "ci",
		"created_at_ns": 1793491200000000000, "expires_at_ns": 1809129600000000000, "revoked": false, "scopes": set(),
		"resource_owner": "octo-org", "repository_selection": "selected", "repositories": {"app"},
		"permissions": {"metadata": "read", "contents": "write"}}`)
	grant := ast.MustParseTerm(`{"id": 1, "state": "approved", "reason": "", "reviewer": "erin", "updated_at_ns": 1767225600000000000}`)
	repo := ast.MustParseTerm(`{"owner": "octo-org", "name": "app", "visibility": "private"}`)
	user := ast.MustParseTerm(`{"login": "bob", "managed_by": null}`)
	member := ast.StringTerm("member")
	one := func(t *ast.Term) topdown.BuiltinFunc {
		return func(_ topdown.BuiltinContext, _ []*ast.Term, iter func(*ast.Term) error) error { return iter(t) }
	}
	for name, fn := range map[string]topdown.BuiltinFunc{
		"pat.token": one(token), "pat.grant": one(grant), "pat.org_role": one(member),
		"pat.user": one(user), "pat.repository": one(repo),
	} {
		topdown.RegisterBuiltinFunc(name, fn)
	}
}

// BenchmarkCheckCached measures a Check answered from the decision cache.
func BenchmarkCheckCached(b *testing.B) {
	f := newFixtureLogs(b, `{"addr": "127.0.0.1:0", "decision_cache": {"ttl": "1h"}}`, false)
	benchCheck(b, f, gitInfoRefs, basicAuth("x-access-token", goodToken))
}

// BenchmarkBuildInput measures the encoded CheckRequest -> input
// conversion alone: through the generated message (how requests were read
// before wire.go, and how the rare ones it declines still are), and
// straight from the wire.
func BenchmarkBuildInput(b *testing.B) {
	req := httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", map[string]string{
		":authority": "git.example.com", ":method": "GET", ":path": "/octo-org/app.git/info/refs?service=git-upload-pack",
		"authorization": "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3Q=", "user-agent": "git/2.45.0", "accept": "*/*",
	})
	// Envoy sends both peers and the time with every Check.
	req.Attributes.Source = &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
		Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 53122}})}
	req.Attributes.Destination = &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
		Address: "10.0.0.2", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443}}), Principal: "spiffe://git"}
	req.Attributes.Request.Time = &timestamppb.Timestamp{Seconds: 1767225600, Nanos: 123456789}
	wire := marshal(b, req)
	b.Run("from=message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var msg authv3.CheckRequest
			if err := proto.Unmarshal(wire, &msg); err != nil {
				b.Fatal(err)
			}
			if _, err := fromMessage(&msg).build(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Every request from another source port, as from many clients: the
	// peer cache misses.
	sources := make([][]byte, 1024)
	for i := range sources {
		req.Attributes.Source.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(40000 + i)}
		sources[i] = marshal(b, req)
	}
	b.Run("from=wire,new_sources", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			decodeAndBuild(b, sources[i%len(sources)])
			i++
		}
	})
	b.Run("from=wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeAndBuild(b, wire)
		}
	})
}

func decodeAndBuild(b *testing.B, wire []byte) {
	in, err := decodeCheck(wire)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := in.build(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBuildResponse measures the decision -> CheckResponse conversion alone.
func BenchmarkBuildResponse(b *testing.B) {
	decision := ast.MustParseTerm(`{"allowed": true, "headers": {"x-pat-token-id": "42", "x-pat-user": "bob"},
		"response_headers_to_add": {"GitHub-Authentication-Token-Expiration": "2026-03-01 00:00:00 UTC"},
		"decision": {"allow": true, "status": 200, "reasons": [], "token_id": 42, "kind": "classic", "user": "bob"}}`).Value
	headers := map[string]string{"authorization": "Basic x", "x-pat-user": "mallory"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildResponse(decision, headers); err != nil {
			b.Fatal(err)
		}
	}
}
