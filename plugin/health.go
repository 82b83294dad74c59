package plugin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
)

// healthInterval is how often the plugin re-evaluates its status from the
// store's connection and the index's staleness.
const healthInterval = time.Second

// followSlack is how far behind an index that follows its store may be: a
// poll interval and a catch-up, with room to spare.
const followSlack = 3 * index.DefaultPollInterval

// storeHealth is what the plugin reports about its store beyond start-up:
// the store's connection (PostgreSQL's listener) and how far the index is
// behind. Metrics read it without the plugin's lock, so a scrape never
// waits for a start-up that loads a million tokens.
type storeHealth struct {
	db       atomic.Pointer[store.DB]
	idx      atomic.Pointer[index.Index]
	register sync.Once
}

// set points the metrics at the running store and index (nil when stopped).
func (h *storeHealth) set(db *store.DB, idx *index.Index) {
	h.db.Store(db)
	h.idx.Store(idx)
}

// registerMetrics adds the store's gauges to OPA's Prometheus registry
// (served on /metrics), once per plugin.
func (p *Plugin) registerMetrics() {
	reg := p.manager.PrometheusRegister()
	if reg == nil {
		return
	}
	h := &p.health
	h.register.Do(func() {
		health := func(f func(store.Health) float64) func() float64 {
			return func() float64 {
				if db := h.db.Load(); db != nil {
					return f(db.Health())
				}
				return 0
			}
		}
		fromIndex := func(f func(*index.Index) float64) func() float64 {
			return func() float64 {
				if idx := h.idx.Load(); idx != nil {
					return f(idx)
				}
				return 0
			}
		}
		collectors := []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "opa_pat_store_connected",
				Help: "1 while the token store is reachable (PostgreSQL: the change listener is connected), 0 otherwise."},
				health(func(s store.Health) float64 { return boolFloat(s.Connected) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "opa_pat_store_reconnects_total",
				Help: "Reconnections of the PostgreSQL change listener after a lost connection."},
				health(func(s store.Health) float64 { return float64(s.Reconnects) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "opa_pat_index_staleness_seconds",
				Help: "Seconds since the in-memory token index last caught up with the store."},
				fromIndex(func(idx *index.Index) float64 {
					if idx.CurrentAt().IsZero() {
						return 0
					}
					return time.Since(idx.CurrentAt()).Seconds()
				})),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "opa_pat_index_stale",
				Help: "1 while the index is past store.max_staleness and token decisions deny, 0 otherwise."},
				fromIndex(func(idx *index.Index) float64 { return boolFloat(idx.Current(time.Now()) != nil) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "opa_pat_index_reloads_total",
				Help: "Loads of the whole store after the change log was pruned past the index, or the store was replaced under it (a backup restored, the store created anew)."},
				fromIndex(func(idx *index.Index) float64 { return float64(idx.Reloads()) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "opa_pat_index_change_seq",
				Help: "The store change-log sequence number the index reflects."},
				fromIndex(func(idx *index.Index) float64 { return float64(idx.Seq()) })),
		}
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				p.logger().Warn("Registering the token store metrics: %v.", err)
			}
		}
	})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// followFailure is what the index's follower last met, until it catches up.
type followFailure struct {
	msg string
	// records is set when the change log was read but a record one of its
	// changes names was not (index.RecordError).
	records bool
}

// watchHealth re-evaluates the plugin status every healthInterval until ctx
// ends, and updates it when it changes:
//   - OK, no message: the index is current;
//   - OK with a message: change notifications are down but the change log
//     is read; or the index is more than followSlack old (the store is
//     unreachable, its reads fail, or a read has not returned) and decisions
//     still come from the in-memory index, within store.max_staleness;
//   - Err: past store.max_staleness; token decisions deny until the index
//     catches up, and the status returns to OK when it has.
//
// It logs a status when the situation changes, not when only its figures
// (how many seconds behind) do. When it warns that a read has not returned,
// it tells followed, which logs when the index has caught up.
func (p *Plugin) watchHealth(ctx context.Context, db *store.DB, idx *index.Index, bound time.Duration, where string, followed *followLog) {
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	var last plugins.Status
	last.State = plugins.StateOK
	lastSituation := ""
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var behind followFailure
		if f := p.behind.Load(); f != nil {
			behind = *f
		}
		now := time.Now()
		st, situation := healthStatus(db.Health(), behind, idx, bound, where, now)
		if strings.HasPrefix(situation, situationWaiting) {
			followed.fellBehind(idx.CurrentAt())
		}
		said := false // settingsChecked logs its own
		if msg := p.settingsFailure.Load(); msg != nil {
			st, said = plugins.Status{State: plugins.StateErr, Message: *msg}, true
			situation = *msg
		}
		if msg := p.failure.Load(); msg != nil {
			st, said = plugins.Status{State: plugins.StateErr, Message: *msg}, false
			situation = *msg
		}
		if (st == last && !first) || ctx.Err() != nil {
			continue
		}
		// The first look sets the status whatever Start set (it may have
		// seen a failure that is over), and says nothing when all is well.
		quiet := said || (first && st.State == plugins.StateOK && st.Message == "") ||
			(!first && st.State == last.State && situation == lastSituation)
		first = false
		switch {
		case quiet:
		case st.State == plugins.StateErr:
			p.logger().Error("%s", st.Message)
		case st.State == plugins.StateOK:
			if st.Message != "" {
				p.logger().Warn("%s", st.Message)
			} else {
				// The follower said when the index caught up (followLog).
				p.logger().Info("Token store %s: status OK again: the store is reachable and the index follows it.", where)
			}
		}
		p.manager.UpdatePluginStatus(Name, &plugins.Status{State: st.State, Message: st.Message})
		last, lastSituation = st, situation
	}
}

// situationWaiting begins the situation of a status that names a read of
// the store that has not returned.
const situationWaiting = "waiting for "

// healthStatus is the plugin status that a store's health, the failure of
// the index's follower (zero while it follows) and the index's staleness
// call for, and the situation it describes: the message without its
// figures, which change every second while the index falls behind. The
// message names the cause now: a read of the store that has not returned,
// while the listener is up; else the follower's error when it has one (why
// the index is behind), else the listener's while it is down; a listener
// that is up again keeps the last error it met, which is history (a
// database that did not exist while a backup was restored) and is not
// cited. It never lacks a cause: without one it says how far behind the
// index is.
func healthStatus(h store.Health, behind followFailure, idx *index.Index, bound time.Duration, where string, now time.Time) (plugins.Status, string) {
	if err := idx.StoreOlder(); err != nil {
		// A backup from before an upgrade restored: token decisions deny
		// at once, whatever the bound (index.Index.Current).
		msg := fmt.Sprintf("token store %s cannot be followed: %v; token decisions deny until then", where, err)
		return plugins.Status{State: plugins.StateErr, Message: msg}, msg
	}
	switch {
	case behind.msg != "":
		h.LastError = behind.msg
	case h.Connected:
		h.LastError = ""
	}
	age := now.Sub(idx.CurrentAt())
	fresh := age <= followSlack
	stale := idx.Current(now) != nil
	caught := idx.CurrentAt().UTC().Format(time.RFC3339)
	if h.Connected && fresh && !stale {
		return plugins.Status{State: plugins.StateOK}, ""
	}
	if fresh && !stale && !h.Connected {
		// The change log is read (every second) but the listener is
		// down, or backing off after an outage.
		msg := fmt.Sprintf("token store %s: change notifications unavailable since %s (%s); the index follows the change log every %s",
			where, h.Since.UTC().Format(time.RFC3339), orNone(h.LastError), index.DefaultPollInterval)
		return plugins.Status{State: plugins.StateOK, Message: msg}, msg
	}
	// The index is behind. What matters to decisions is how old its data
	// is, not when the connection dropped: name its last catch-up.
	var what, situation string
	sep := ":" // before "the index last caught up at"
	if rd, ok := idx.Reading(); ok && h.Connected {
		// A read the store has not answered (a table locked by another
		// session): nothing failed, and the index falls behind.
		what = fmt.Sprintf("token store %s: the index is %s behind the store: a read of %s has not returned for %s",
			where, seconds(age), rd.What, seconds(now.Sub(rd.Since)))
		situation = situationWaiting + rd.What
		sep = ";"
	} else if h.LastError != "" {
		// A store whose listener is up is reachable: what fails is
		// reading it (a revoked grant, a restore under way), and the
		// status says what cannot be read rather than "unreachable".
		state := "unreachable"
		switch {
		case h.Connected && behind.records:
			state = "reachable but cannot be read"
		case h.Connected:
			state = "reachable but its change log cannot be read"
		}
		what = fmt.Sprintf("token store %s %s (%s)", where, state, h.LastError)
		situation = what
	} else {
		what = fmt.Sprintf("token store %s: the index is %s behind the store", where, seconds(age))
		situation = "behind"
		sep = ";"
	}
	if stale {
		return plugins.Status{State: plugins.StateErr, Message: fmt.Sprintf(
			"%s%s the index last caught up at %s, more than store.max_staleness (%s) ago; token decisions deny until it catches up",
			what, sep, caught, bound)}, "stale: " + situation
	}
	return plugins.Status{State: plugins.StateOK, Message: fmt.Sprintf(
		"%s%s the index last caught up at %s; answering from it until store.max_staleness (%s) has passed since then",
		what, sep, caught, bound)}, situation
}

// seconds is d in whole seconds, as "12 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%d s", int64(d/time.Second)) }

func orNone(s string) string {
	if s == "" {
		return "no error reported"
	}
	return s
}
