package extauthz

import (
	"fmt"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
)

func TestProfilePolicy(t *testing.T) {
	if os.Getenv("PROFILE_POLICY") == "" {
		t.Skip()
	}
	b := &testing.B{}
	_ = b
	f := newFixtureLogs(t, `{"addr": "127.0.0.1:0"}`, false)
	setupPolicy(t, f)
	req := httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", "github_pat_bob_app"))
	in, _, _ := buildInput(req)
	pq, _ := f.server.preparedQuery(t.Context())
	p := profiler.New()
	for range 200 {
		if _, err := pq.Eval(t.Context(), rego.EvalParsedInput(in), rego.EvalQueryTracer(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range p.ReportTopNResults(30, []string{"total_time_ns"}) {
		fmt.Printf("%10dus %6d %s\n", s.ExprTimeNs/200/1000, s.NumEval/200, s.Location)
	}
}
