package plugin

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/logging/test"
	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// logLine is a captured log entry: its level and message.
type logLine struct {
	level   logging.Level
	message string
}

func logLines(l *test.Logger) []logLine {
	var lines []logLine
	for _, e := range l.Entries() {
		lines = append(lines, logLine{e.Level, e.Message})
	}
	return lines
}

// The follower's lines, given the errors and times of its rounds: a warning
// when catch-ups start failing and when the error changes, each naming the
// time of the last catch-up; one info line when a catch-up succeeds again,
// naming how long the index was behind; nothing while nothing changes.
func TestFollowLog(t *testing.T) {
	logger := test.New()
	l := &followLog{logger: logger, where: `postgres "postgres://pat@db/pat"`, bound: time.Minute}
	caught := time.Date(2026, 11, 25, 11, 59, 50, 250_000_000, time.UTC)
	refused := errors.New("reading the store's change log after change 7: connection refused")
	reset := errors.New("reading the store's change log after change 7: connection reset by peer")

	l.caughtUp(caught) // the store answers: nothing to say
	l.failed(refused, caught)
	l.failed(refused, caught) // the same error on the next poll
	l.failed(reset, caught)
	l.caughtUp(caught.Add(12345678 * time.Microsecond))
	l.caughtUp(caught.Add(13 * time.Second))
	again := caught.Add(20 * time.Second)
	l.failed(refused, again)
	l.caughtUp(again.Add(1500 * time.Millisecond))

	want := []logLine{
		{logging.Warn, `Token store postgres "postgres://pat@db/pat": the index is behind: reading the store's change log after change 7: connection refused; ` +
			`answering from the index as of its last catch-up at 2026-11-25T11:59:50Z until store.max_staleness (1m0s) has passed since then.`},
		{logging.Warn, `Token store postgres "postgres://pat@db/pat": the index is behind: reading the store's change log after change 7: connection reset by peer; ` +
			`answering from the index as of its last catch-up at 2026-11-25T11:59:50Z until store.max_staleness (1m0s) has passed since then.`},
		{logging.Info, `Token store postgres "postgres://pat@db/pat": the index has caught up; it was behind for 12.346s, since its catch-up at 2026-11-25T11:59:50Z.`},
		{logging.Warn, `Token store postgres "postgres://pat@db/pat": the index is behind: reading the store's change log after change 7: connection refused; ` +
			`answering from the index as of its last catch-up at 2026-11-25T12:00:10Z until store.max_staleness (1m0s) has passed since then.`},
		{logging.Info, `Token store postgres "postgres://pat@db/pat": the index has caught up; it was behind for 1.5s, since its catch-up at 2026-11-25T12:00:10Z.`},
	}
	if got := logLines(logger); !slices.Equal(got, want) {
		t.Fatalf("logged\n%q\nwant\n%q", got, want)
	}

	// A store older than the index's schema: an error, saying that token
	// decisions deny at once; then the info line once it was migrated and
	// loaded.
	logger = test.New()
	l = &followLog{logger: logger, where: `postgres "postgres://pat@db/pat"`, bound: time.Minute}
	older := fmt.Errorf("%w: it is at schema version 3 and was at 4 when loaded", store.ErrStoreOlder)
	l.failed(older, caught)
	l.failed(older, caught)
	l.caughtUp(caught.Add(3 * time.Second))
	want = []logLine{
		{logging.Error, `Token store postgres "postgres://pat@db/pat": the index cannot follow the store: the store's schema is older than the one this reader loaded: ` +
			`it is at schema version 3 and was at 4 when loaded; token decisions deny at once (fail closed) until then.`},
		{logging.Info, `Token store postgres "postgres://pat@db/pat": the index has caught up; it was behind for 3s, since its catch-up at 2026-11-25T11:59:50Z.`},
	}
	if got := logLines(logger); !slices.Equal(got, want) {
		t.Fatalf("logged\n%q\nwant\n%q", got, want)
	}
}

// TestFollowerOutageLog: a running sidecar whose change-log reads fail for a
// few seconds, far shorter than store.max_staleness, while its store
// connection stays up (the changes table renamed away and back, on SQLite
// and on PostgreSQL), logs one warning naming the time its data is from and,
// once the reads succeed again, one line that the index has caught up. Its
// status stays OK throughout, and nothing else is logged.
func TestFollowerOutageLog(t *testing.T) {
	for _, tc := range []struct {
		backend string
		// setup gives the plugin's store section, how its log names the
		// store, and a way to run a statement on the store on a connection
		// of the test's own.
		setup   func(t *testing.T) (config, where string, exec func(stmt string))
		missing string // the error of a read of the renamed table
	}{
		{backend: "sqlite", setup: func(t *testing.T) (string, string, func(string)) {
			path, _ := seed(t)
			other, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() })
			return `{"path": "` + path + `"}`, fmt.Sprintf("%q", path), func(stmt string) {
				t.Helper()
				if _, err := other.ExecContext(t.Context(), stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
		}, missing: "reading change log: SQL logic error: no such table: changes (1)"},
		{backend: "postgres", setup: func(t *testing.T) (string, string, func(string)) {
			// A password (trust authentication ignores it) that no line
			// may show.
			u, err := url.Parse(pgtest.Database(t, "pat_outage_"))
			if err != nil {
				t.Fatal(err)
			}
			u.User = url.UserPassword(u.User.Username(), "s3cret-pw")
			dsn := u.String()
			db, err := store.Open(t.Context(), dsn) // the schema
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			return `{"postgres": {"dsn": "` + dsn + `"}}`, fmt.Sprintf("postgres %q", store.RedactURL(dsn)), func(stmt string) {
				t.Helper()
				pgtest.Exec(t, dsn, stmt)
			}
		}, missing: `reading change log: ERROR: relation "changes" does not exist (SQLSTATE 42P01)`},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			config, where, exec := tc.setup(t)
			section := `{"store": ` + config[:len(config)-1] + `, "max_staleness": "60s"}}`
			logger := test.New()
			m, p := newManagerWith(t, `{"plugins": {"pat": `+section+`}}`, logger, section)
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer p.Stop(t.Context())
			started := len(logger.Entries())

			since := func() []logLine { return logLines(logger)[started:] }
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within 10s; logged since the start: %q", what, since())
					}
				}
			}

			seq := p.Index().Seq()
			exec(`ALTER TABLE changes RENAME TO changes_away`)
			outage := time.Now()
			waitFor("the warning", func() bool { return len(since()) > 0 })
			// The index's data is from its last catch-up, which does not move
			// while the reads fail.
			asOf := p.Index().CurrentAt()
			time.Sleep(1500 * time.Millisecond) // a few failed polls
			if p.Index().CurrentAt() != asOf {
				t.Fatalf("the index caught up at %s while its change log was away", p.Index().CurrentAt())
			}
			exec(`ALTER TABLE changes_away RENAME TO changes`)
			waitFor("the line that the index caught up", func() bool { return len(since()) > 1 })
			held := time.Since(outage)
			time.Sleep(1500 * time.Millisecond) // anything more to say would be said by now

			got := since()
			warning := logLine{logging.Warn, fmt.Sprintf("Token store %s: the index is behind: reading the store's change log after change %d: %s; "+
				"answering from the index as of its last catch-up at %s until store.max_staleness (1m0s) has passed since then.",
				where, seq, tc.missing, asOf.UTC().Format(time.RFC3339))}
			caughtUp := regexp.MustCompile(`^Token store ` + regexp.QuoteMeta(where) + `: the index has caught up; it was behind for (\S+), since its catch-up at ` +
				regexp.QuoteMeta(asOf.UTC().Format(time.RFC3339)) + `\.$`)
			if len(got) != 2 || got[0] != warning || got[1].level != logging.Info || !caughtUp.MatchString(got[1].message) {
				t.Fatalf("logged since the start:\n%q\nwant\n%q\nand an info line matching %s", got, warning, caughtUp)
			}
			behind, err := time.ParseDuration(caughtUp.FindStringSubmatch(got[1].message)[1])
			if err != nil || behind < 1500*time.Millisecond || behind > held+2*time.Second {
				t.Fatalf("behind for %s (%v); want between the 1.5s the reads failed and %s", behind, err, held+2*time.Second)
			}
			for _, e := range logger.Entries() {
				if strings.Contains(e.Message, "s3cret-pw") {
					t.Fatalf("a log line shows the DSN's password: %s", e.Message)
				}
			}
			if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateOK || s.Message != "" {
				t.Fatalf("status = %+v; want OK without a message", s)
			}
		})
	}
}

// TestReadThatDoesNotReturnLog: a read of the change log stuck on a lock
// (another session holds ACCESS EXCLUSIVE on changes) makes the status warn
// once the index is a few seconds old, measured from its last catch-up while
// the read is in flight, with one log line although the figures grow; the
// read is given up after half the bound and sent again; once the lock goes,
// the index says it has caught up and the status is OK again.
func TestReadThatDoesNotReturnLog(t *testing.T) {
	dsn := pgtest.Database(t, "pat_stuck_")
	db, err := store.Open(t.Context(), dsn) // the schema
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	where := fmt.Sprintf("postgres %q", dsn)
	section := `{"store": {"postgres": {"dsn": "` + dsn + `"}, "max_staleness": "10s"}}`
	logger := test.New()
	m, p := newManagerWith(t, `{"plugins": {"pat": `+section+`}}`, logger, section)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(t.Context())
	time.Sleep(1500 * time.Millisecond) // the listener up, the status settled
	started := len(logger.Entries())
	since := func() []logLine { return logLines(logger)[started:] }

	lock, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	tx, err := lock.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `LOCK TABLE changes IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	asOf := p.Index().CurrentAt()
	var warned plugins.Status
	for deadline := time.Now().Add(6 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if s := m.PluginStatus()[Name]; s != nil && s.Message != "" {
			warned = *s
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning within 6s of the lock; logged %q", since())
		}
	}
	waiting := regexp.MustCompile(`^token store ` + regexp.QuoteMeta(where) + `: the index is ([0-9]+) s behind the store: a read of the change log has not returned for ([0-9]+) s; ` +
		`the index last caught up at ` + regexp.QuoteMeta(asOf.UTC().Format(time.RFC3339)) + `; answering from it until store.max_staleness \(10s\) has passed since then$`)
	if warned.State != plugins.StateOK || !waiting.MatchString(warned.Message) {
		t.Fatalf("status = %+v; want OK with a message matching %s", warned, waiting)
	}
	time.Sleep(4 * time.Second) // past the read's 5s: given up and sent again
	if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateOK || !waiting.MatchString(s.Message) || s.Message == warned.Message {
		t.Fatalf("status 4s later = %+v; want the same situation, further behind", s)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if s := m.PluginStatus()[Name]; s != nil && s.State == plugins.StateOK && s.Message == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status not OK within 5s of the lock's end: %+v; logged %q", m.PluginStatus()[Name], since())
		}
	}
	time.Sleep(1500 * time.Millisecond)

	got := since()
	gaveUp := regexp.MustCompile(`^Token store ` + regexp.QuoteMeta(where) + `: the index is behind: reading the store's change log after change 0: ` +
		`no answer within 5s, given up \(tried again on the next poll\): .+; answering from the index as of its last catch-up at ` +
		regexp.QuoteMeta(asOf.UTC().Format(time.RFC3339)) + ` until store.max_staleness \(10s\) has passed since then\.$`)
	caughtUp := regexp.MustCompile(`^Token store ` + regexp.QuoteMeta(where) + `: the index has caught up; it was behind for \S+, since its catch-up at ` +
		regexp.QuoteMeta(asOf.UTC().Format(time.RFC3339)) + `\.$`)
	okAgain := logLine{logging.Info, "Token store " + where + ": status OK again: the store is reachable and the index follows it."}
	if len(got) != 4 || got[0] != (logLine{logging.Warn, warned.Message}) || got[1].level != logging.Warn || !gaveUp.MatchString(got[1].message) ||
		!slices.ContainsFunc(got[2:], func(l logLine) bool { return l.level == logging.Info && caughtUp.MatchString(l.message) }) ||
		!slices.Contains(got[2:], okAgain) {
		t.Fatalf("logged since the lock:\n%q\nwant the warning %q, the given-up read matching %s, then (in any order) a line matching %s and %q",
			got, warned.Message, gaveUp, caughtUp, okAgain)
	}
}
