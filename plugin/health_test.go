package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
		records   bool   // ... reading a record (index.RecordError)
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
		// Nothing failed and no read waits (the SRE's "(no error reported)"):
		// the status says how far behind the index is.
		{note: "postgres listener back, past the bound, no follower error", health: store.Health{Backend: "postgres", Connected: true, Since: since, LastError: `database "idx_a" does not exist`},
			currentAt: now.Add(-61 * time.Second),
			want:      plugins.Status{State: plugins.StateErr, Message: `token store postgres "db": the index is 61 s behind the store; the index last caught up at 2026-11-25T11:58:59Z, more than store.max_staleness (1m0s) ago; token decisions deny until it catches up`}},
		{note: "postgres connected, behind within the bound, no follower error", health: store.Health{Backend: "postgres", Connected: true, Since: since},
			currentAt: now.Add(-4 * time.Second),
			want:      plugins.Status{State: plugins.StateOK, Message: `token store postgres "db": the index is 4 s behind the store; the index last caught up at 2026-11-25T11:59:56Z; answering from it until store.max_staleness (1m0s) has passed since then`}},
		// The change log was read, a token it names was not: the status
		// says that the store cannot be read, not its change log.
		{note: "postgres listener up, a record cannot be read", health: store.Health{Backend: "postgres", Connected: true, Since: since},
			behind: `applying change 12: reading token 23: ERROR: permission denied for table tokens (SQLSTATE 42501)`, records: true, currentAt: since.Add(-5 * time.Second),
			want: plugins.Status{State: plugins.StateOK, Message: `token store postgres "db" reachable but cannot be read (applying change 12: reading token 23: ERROR: permission denied for table tokens (SQLSTATE 42501)): the index last caught up at 2026-11-25T11:59:45Z; answering from it until store.max_staleness (1m0s) has passed since then`}},
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
			got, _ := healthStatus(tc.health, followFailure{msg: tc.behind, records: tc.records}, idx, time.Minute, `postgres "db"`, now)
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
		if got, _ := healthStatus(h, followFailure{msg: errOlder.Error()}, idx, time.Minute, `postgres "db"`, now); got != want {
			t.Fatalf("healthStatus(%+v) =\n%+v\nwant\n%+v", h, got, want)
		}
	}
}

// blockedStore is a store whose change log does not answer (a table
// locked by another session) until the read's context ends.
type blockedStore struct{ store.Reader }

func (blockedStore) ChangesSince(ctx context.Context, _ store.Mark, _ int) ([]store.Change, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// While a read of the change log has not returned, the status says so once
// the index is more than followSlack old, measured from its last catch-up,
// with the figures of both: a warning within the bound, an error past it.
// The situation stays the same while the figures grow, so that the status
// is logged once.
func TestHealthStatusReadInFlight(t *testing.T) {
	idx := index.New()
	idx.SetMaxStaleness(time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		idx.CatchUp(ctx, blockedStore{})
	}()
	defer func() { cancel(); <-done }()
	var rd index.Reading
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		var ok bool
		if rd, ok = idx.Reading(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no read in flight")
		}
	}
	caught := rd.Since.Add(-time.Second)
	idx.MarkCurrent(caught)
	at := caught.UTC().Format(time.RFC3339)
	h := store.Health{Backend: "postgres", Connected: true}

	if got, _ := healthStatus(h, followFailure{}, idx, time.Minute, `postgres "db"`, rd.Since.Add(time.Second)); got != (plugins.Status{State: plugins.StateOK}) {
		t.Fatalf("2s behind, a read in flight for 1s: %+v; want OK", got)
	}
	got, situation := healthStatus(h, followFailure{}, idx, time.Minute, `postgres "db"`, rd.Since.Add(3*time.Second))
	want := plugins.Status{State: plugins.StateOK, Message: `token store postgres "db": the index is 4 s behind the store: a read of the change log has not returned for 3 s; ` +
		`the index last caught up at ` + at + `; answering from it until store.max_staleness (1m0s) has passed since then`}
	if got != want {
		t.Fatalf("4s behind:\n%+v\nwant\n%+v", got, want)
	}
	got2, situation2 := healthStatus(h, followFailure{}, idx, time.Minute, `postgres "db"`, rd.Since.Add(9*time.Second))
	if !strings.Contains(got2.Message, "the index is 10 s behind the store: a read of the change log has not returned for 9 s;") || situation2 != situation {
		t.Fatalf("10s behind: %+v (situation %q, was %q)", got2, situation2, situation)
	}
	got, _ = healthStatus(h, followFailure{}, idx, time.Minute, `postgres "db"`, rd.Since.Add(61*time.Second))
	want = plugins.Status{State: plugins.StateErr, Message: `token store postgres "db": the index is 62 s behind the store: a read of the change log has not returned for 61 s; ` +
		`the index last caught up at ` + at + `, more than store.max_staleness (1m0s) ago; token decisions deny until it catches up`}
	if got != want {
		t.Fatalf("past the bound:\n%+v\nwant\n%+v", got, want)
	}
}
