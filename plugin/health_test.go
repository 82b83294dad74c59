package plugin

import (
	"context"
	"errors"
	"fmt"
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
		// A bound the index cannot meet on a healthy store (it polls every
		// second): refused at start rather than denying half the decisions.
		{note: "below the poll interval", raw: `{"store": {"postgres": {"dsn": "postgres://db/pat"}, "max_staleness": "500ms"}}`,
			err: `invalid configuration for plugin "pat": store.max_staleness: "500ms" is below the minimum of 5s: the index reads the store's change log every 1s, and a smaller bound would deny token decisions on a store that answers`},
		{note: "below the minimum", raw: `{"store": {"path": "/tmp/x.db", "max_staleness": "4.9s"}}`,
			err: `invalid configuration for plugin "pat": store.max_staleness: "4.9s" is below the minimum of 5s: the index reads the store's change log every 1s, and a smaller bound would deny token decisions on a store that answers`},
		{note: "the minimum", raw: `{"store": {"path": "/tmp/x.db", "max_staleness": "5s"}}`, want: 5 * time.Second},
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
		behind    string // the follower's error
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
		// The listener is back (a dropped database restored) and keeps the
		// error it met meanwhile; the index is behind for another cause,
		// which the status names.
		{note: "postgres listener back, the index behind past the bound",
			health:    store.Health{Backend: "postgres", Connected: true, Since: since, LastError: `database "idx_a" does not exist`},
			behind:    `reading the store's change log after change 7: ERROR: permission denied for table changes`,
			currentAt: now.Add(-61 * time.Second),
			want:      plugins.Status{State: plugins.StateErr, Message: `token store postgres "db" reachable but its change log cannot be read (reading the store's change log after change 7: ERROR: permission denied for table changes): the index last caught up at 2026-11-25T11:58:59Z, more than store.max_staleness (1m0s) ago; token decisions deny until it catches up`}},
		{note: "postgres listener back, the index current", health: store.Health{Backend: "postgres", Connected: true, Since: since, LastError: `database "idx_a" does not exist`},
			currentAt: now.Add(-time.Second), want: plugins.Status{State: plugins.StateOK}},
		{note: "postgres listener back, past the bound, no follower error", health: store.Health{Backend: "postgres", Connected: true, Since: since, LastError: `database "idx_a" does not exist`},
			currentAt: now.Add(-61 * time.Second),
			want:      plugins.Status{State: plugins.StateErr, Message: `token store postgres "db" reachable but its change log cannot be read (no error reported): the index last caught up at 2026-11-25T11:58:59Z, more than store.max_staleness (1m0s) ago; token decisions deny until it catches up`}},
		// Within the bound, a follower that fails while the listener is up
		// is named too; a fresh index is not held against a passing error.
		{note: "postgres listener up, the follower failing within the bound", health: store.Health{Backend: "postgres", Connected: true, Since: since},
			behind: "reading the store's change log after change 7: ERROR: permission denied for table changes", currentAt: since.Add(-5 * time.Second),
			want: plugins.Status{State: plugins.StateOK, Message: `token store postgres "db" reachable but its change log cannot be read (reading the store's change log after change 7: ERROR: permission denied for table changes): the index last caught up at 2026-11-25T11:59:45Z; answering from it until store.max_staleness (1m0s) has passed since then`}},
		{note: "postgres listener up, a follower error, the index fresh", health: store.Health{Backend: "postgres", Connected: true, Since: since},
			behind: "reading the store's change log after change 7: connection reset by peer", currentAt: now.Add(-time.Second),
			want: plugins.Status{State: plugins.StateOK}},
		{note: "postgres down, the follower's error named", health: store.Health{Backend: "postgres", Since: since, LastError: "connection refused"},
			behind: "reading the store's change log after change 7: connection reset by peer", currentAt: since.Add(-5 * time.Second),
			want: plugins.Status{State: plugins.StateOK, Message: `token store postgres "db" unreachable (reading the store's change log after change 7: connection reset by peer): the index last caught up at 2026-11-25T11:59:45Z; answering from it until store.max_staleness (1m0s) has passed since then`}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			idx := index.New()
			idx.SetMaxStaleness(time.Minute)
			idx.MarkCurrent(tc.currentAt)
			got := healthStatus(tc.health, tc.behind, idx, time.Minute, `postgres "db"`, now)
			if got != tc.want {
				t.Fatalf("healthStatus() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// olderStore is a store restored from a backup older than the schema the
// index loaded: every read of its change log fails with store.ErrStoreOlder.
type olderStore struct{ store.Reader }

var errOlder = fmt.Errorf("%w: it is at schema version 3 and was at 4 when loaded", store.ErrStoreOlder)

func (olderStore) ChangesSince(context.Context, store.Mark, int) ([]store.Change, error) {
	return nil, errOlder
}

// A store older than the index's schema: the status is an error at once,
// well within the bound, naming the schema versions, whatever the listener
// says.
func TestHealthStatusStoreOlder(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	idx := index.New()
	idx.SetMaxStaleness(time.Minute)
	idx.MarkCurrent(now.Add(-time.Second))
	if err := idx.CatchUp(t.Context(), olderStore{}); !errors.Is(err, store.ErrStoreOlder) {
		t.Fatalf("CatchUp() = %v", err)
	}
	want := plugins.Status{State: plugins.StateErr, Message: `token store postgres "db" cannot be followed: ` +
		`the store's schema is older than the one this reader loaded: it is at schema version 3 and was at 4 when loaded; token decisions deny until then`}
	for _, h := range []store.Health{{Backend: "postgres", Connected: true}, {Backend: "postgres", LastError: "connection refused"}} {
		if got := healthStatus(h, errOlder.Error(), idx, time.Minute, `postgres "db"`, now); got != want {
			t.Fatalf("healthStatus(%+v) =\n%+v\nwant\n%+v", h, got, want)
		}
	}
}
