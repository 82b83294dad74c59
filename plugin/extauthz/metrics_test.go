package extauthz

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Every evaluated Check brings a decision of its own. The checks counter
// keeps one series per result and status however many decisions it sees,
// and holds none of them.
func TestMetricsKeepNoDecisions(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	for i := range 1000 {
		decision := ast.NewObject([2]*ast.Term{ast.StringTerm("n"), ast.IntNumberTerm(i)})
		m.observe(outcome{allowed: true, status: 200, decision: decision}, false, 0.0001)
		m.observe(outcome{status: 403, decision: decision}, false, 0.0001)
		m.observe(outcome{status: 500}, true, 0.0001)
	}
	if n := len(m.counts); n != 3 {
		t.Fatalf("%d series kept for 3 results; want 3", n)
	}
	for _, tc := range []struct {
		note, result, status string
		want                 float64
	}{
		{note: "allowed", result: "allowed", status: "200", want: 1000},
		{note: "denied", result: "denied", status: "403", want: 1000},
		{note: "error", result: "error", status: "500", want: 1000},
	} {
		t.Run(tc.note, func(t *testing.T) {
			var got dto.Metric
			if err := m.checks.WithLabelValues(tc.result, tc.status).Write(&got); err != nil {
				t.Fatal(err)
			}
			if got.GetCounter().GetValue() != tc.want {
				t.Fatalf("opa_pat_extauthz_checks_total{result=%q,status=%q} = %v; want %v", tc.result, tc.status, got.GetCounter().GetValue(), tc.want)
			}
		})
	}
}
