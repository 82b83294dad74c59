package plugin

import (
	"errors"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/store"
)

func TestMaxStalenessConfig(t *testing.T) {
	for _, tc := range []struct {
		note, raw string
		want      time.Duration
		err       string
	}{
		{note: "default", raw: `{"store": {"postgres": {"dsn": "postgres://db/pat"}}}`, want: DefaultMaxStaleness},
		{note: "set", raw: `{"store": {"postgres": {"dsn": "postgres://db/pat"}, "max_staleness": "15s"}}`, want: 15 * time.Second},
		{note: "not a duration", raw: `{"store": {"path": "/tmp/x.db", "max_staleness": "soon"}}`,
			err: `invalid configuration for plugin "pat": store.max_staleness: "soon" is not a positive duration (e.g. "60s")`},
		{note: "zero", raw: `{"store": {"path": "/tmp/x.db", "max_staleness": "0s"}}`,
			err: `invalid configuration for plugin "pat": store.max_staleness: "0s" is not a positive duration (e.g. "60s")`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.raw))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxStaleness() != tc.want {
				t.Fatalf("MaxStaleness() = %s; want %s", c.MaxStaleness(), tc.want)
			}
		})
	}
	a, _ := ParseConfig([]byte(`{"store": {"path": "/tmp/x.db", "max_staleness": "15s"}}`))
	b, _ := ParseConfig([]byte(`{"store": {"path": "/tmp/x.db", "max_staleness": "16s"}}`))
	if a.Equal(b) {
		t.Fatal("configs with different max_staleness are Equal")
	}
}

func TestHealthStatus(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	since := now.Add(-10 * time.Second)
	for _, tc := range []struct {
		note      string
		health    store.Health
		currentAt time.Time
		want      plugins.Status
	}{
		{note: "sqlite", health: store.Health{Backend: "sqlite", Connected: true}, currentAt: now,
			want: plugins.Status{State: plugins.StateOK}},
		{note: "postgres connected", health: store.Health{Backend: "postgres", Connected: true, Since: since}, currentAt: now.Add(-time.Second),
			want: plugins.Status{State: plugins.StateOK}},
		{note: "postgres listener down, change log read", health: store.Health{Backend: "postgres", Since: since, LastError: "connection refused"},
			currentAt: now.Add(-time.Second),
			want:      plugins.Status{State: plugins.StateOK, Message: `token store postgres "db": change notifications unavailable since 2026-11-25T11:59:50Z (connection refused); the index follows the change log every 1s`}},
		{note: "postgres down, within the bound", health: store.Health{Backend: "postgres", Since: since, LastError: "connection refused"},
			currentAt: since.Add(-5 * time.Second),
			want:      plugins.Status{State: plugins.StateOK, Message: `token store postgres "db" unreachable (connection refused): the index last caught up at 2026-11-25T11:59:45Z; answering from it until store.max_staleness (1m0s) has passed since then`}},
		{note: "postgres down, past the bound", health: store.Health{Backend: "postgres", Since: since, LastError: "connection refused"},
			currentAt: now.Add(-61 * time.Second),
			want:      plugins.Status{State: plugins.StateErr, Message: `token store postgres "db" unreachable (connection refused): the index last caught up at 2026-11-25T11:58:59Z, more than store.max_staleness (1m0s) ago; token decisions deny until it catches up`}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			idx := index.New()
			idx.SetMaxStaleness(time.Minute)
			idx.MarkCurrent(tc.currentAt)
			got := healthStatus(tc.health, idx, time.Minute, `postgres "db"`, now)
			if got != tc.want {
				t.Fatalf("healthStatus() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
