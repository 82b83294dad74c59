package extauthz

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// mappingRequests are the requests the mapping benchmarks evaluate: Git
// smart HTTP with Basic, REST with Bearer (plain, GHES-prefixed, nested
// table, organization), and a path the gate does not cover.
var mappingRequests = []struct {
	name, method, target string
	headers              map[string]string
}{
	{"git-info-refs", "GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken)},
	{"git-receive-pack", "POST", "/octo-org/app.git/git-receive-pack", basicAuth("x-access-token", goodToken)},
	{"rest-contents", "GET", "/repos/octo-org/app/contents/README.md", map[string]string{"authorization": "Bearer " + goodToken}},
	{"rest-ghes-secrets", "PUT", "/api/v3/repos/octo-org/app/actions/secrets/TOKEN", map[string]string{"authorization": "token " + goodToken}},
	{"rest-org", "GET", "/orgs/octo-org/members", map[string]string{"authorization": "Bearer " + goodToken}},
	{"not-covered", "GET", "/octo-org/app/blob/main/README.md", map[string]string{"authorization": "Bearer " + goodToken}},
}

// BenchmarkEnvoyMapping measures rego/pat/envoy alone, without the PAT
// policy: "mapped" evaluates data.pat.envoy.mapped (credential and route),
// "response" the whole answer over a stub package pat whose decision is a
// constant allowed decision (so the cost is the gate's alone).
//
// ENVOY_REGO names another envoy.rego to measure (e.g. an earlier version,
// `git show <rev>:rego/pat/envoy/envoy.rego`) for a before/after comparison.
func BenchmarkEnvoyMapping(b *testing.B) {
	file := os.Getenv("ENVOY_REGO")
	if file == "" {
		file = filepath.Join("..", "..", "rego", "pat", "envoy", "envoy.rego")
	}
	src, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	stub := `package pat

decision := {"allow": true, "status": 200, "reasons": [], "token_id": 20, "kind": "fine_grained", "user": "bob", "expires_at_ns": 1809129600000000000}
`
	for _, q := range []struct{ name, query string }{
		{"mapped", "data.pat.envoy.mapped"},
		{"response", "data.pat.envoy.response"},
	} {
		pq, err := rego.New(
			rego.Query(q.query),
			rego.Module("pat/envoy/envoy.rego", string(src)),
			rego.Module("pat/stub.rego", stub),
		).PrepareForEval(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range mappingRequests {
			input, err := BuildInput(httpCheck(r.method, r.target, r.headers))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(q.name+"/"+r.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := pq.Eval(b.Context(), rego.EvalParsedInput(input), rego.EvalMetrics(noMetrics),
						rego.EvalGenerateJSON(resultTerm)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestEnvoyMappingBenchCases keeps the benchmark honest: each request maps
// (or, for the uncovered path, does not) as the benchmark assumes.
func TestEnvoyMappingBenchCases(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "rego", "pat", "envoy", "envoy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(rego.Query("data.pat.envoy.mapped"), rego.Module("pat/envoy/envoy.rego", string(src))).PrepareForEval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mappingRequests {
		input, err := BuildInput(httpCheck(r.method, r.target, r.headers))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := pq.Eval(t.Context(), rego.EvalParsedInput(input))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(rs) == 1, r.name != "not-covered"; got != want {
			t.Errorf("%s: mapped defined = %v, want %v (%v)", r.name, got, want, rs)
		}
	}
}
