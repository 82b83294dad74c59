package extauthz

import (
	"errors"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Error reasons, the label values of opa_pat_extauthz_errors_total.
const (
	reasonBadRequest  = "bad_request" // the request path could not be decoded
	reasonPrepare     = "prepare"     // the decision query could not be prepared
	reasonEvaluation  = "evaluation"  // the evaluation failed
	reasonUndefined   = "undefined"   // the decision is undefined
	reasonDecision    = "decision"    // the decision has the wrong shape
	reasonDecisionLog = "decision_log"
	reasonDecode      = "decode" // the request is not a CheckRequest gRPC can decode
)

// metrics are the gate's Prometheus collectors, registered on OPA's /metrics.
type metrics struct {
	checks   *prometheus.CounterVec
	duration prometheus.Histogram
	errors   *prometheus.CounterVec
	// lookups counts the decision cache's lookups by result; hit and miss
	// are its two series, resolved once: the cached path is a few µs.
	lookups   *prometheus.CounterVec
	hit, miss prometheus.Counter

	mu     sync.RWMutex
	counts map[seriesKey]prometheus.Counter
}

// seriesKey names one series of opa_pat_extauthz_checks_total. It holds the
// labels' values only: an outcome also carries its decision, and a map
// keyed by outcomes kept every decision ever made (a new key per
// evaluation, about 2 KB a Check, until the collector spent most of its
// time marking them).
type seriesKey struct {
	failed, allowed bool
	status          int
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opa_pat_extauthz_checks_total",
			Help: "Envoy ext_authz Check calls answered, by result (allowed, denied, error) and HTTP status.",
		}, []string{"result", "status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "opa_pat_extauthz_check_duration_seconds",
			Help:    "Time to answer an Envoy ext_authz Check call, from receipt to answer.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opa_pat_extauthz_errors_total",
			Help: "Envoy ext_authz Check calls that could not be decided (answered with a denial), by reason.",
		}, []string{"reason"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opa_pat_extauthz_decision_cache_lookups_total",
			Help: "Envoy ext_authz Check calls looked up in the decision cache, by result (hit: answered without an evaluation; miss: evaluated).",
		}, []string{"result"}),
		counts: map[seriesKey]prometheus.Counter{},
	}
	if reg != nil {
		m.checks = register(reg, m.checks)
		m.duration = register(reg, m.duration)
		m.errors = register(reg, m.errors)
		m.lookups = register(reg, m.lookups)
	}
	m.hit, m.miss = m.lookups.WithLabelValues("hit"), m.lookups.WithLabelValues("miss")
	for _, r := range []string{reasonBadRequest, reasonPrepare, reasonEvaluation, reasonUndefined, reasonDecision, reasonDecisionLog, reasonDecode} {
		m.errors.WithLabelValues(r) // every reason shows, at zero
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a server started again after Stop keeps counting).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *metrics) observe(o outcome, failed bool, seconds float64) {
	key := seriesKey{failed: failed, allowed: o.allowed && !failed, status: o.status}
	m.mu.RLock()
	c, ok := m.counts[key]
	m.mu.RUnlock()
	if !ok {
		result := "denied"
		switch {
		case failed:
			result = "error"
		case o.allowed:
			result = "allowed"
		}
		c = m.checks.WithLabelValues(result, strconv.Itoa(o.status))
		m.mu.Lock()
		m.counts[key] = c
		m.mu.Unlock()
	}
	c.Inc()
	m.duration.Observe(seconds)
}

func (m *metrics) failure(reason string) {
	m.errors.WithLabelValues(reason).Inc()
}
