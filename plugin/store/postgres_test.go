package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// testPostgresDSN returns the DSN of a new, empty database, dropped when the
// test ends, or skips the test when no server answers.
func testPostgresDSN(t testing.TB) string {
	t.Helper()
	return pgtest.Database(t, "pat_test_")
}

// openAt opens the store at location (a PostgreSQL URL or a SQLite path)
// for one test, closing it when the test ends.
func openAt(t testing.TB, location string) *DB {
	t.Helper()
	db, err := Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openAtOnce opens and closes the store at location from n goroutines at
// once, as n processes starting together would.
func openAtOnce(t *testing.T, location string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(t.Context(), location)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresOpen(t *testing.T) {
	dsn := testPostgresDSN(t)
	// Several processes open a new database at once: one migrates, the
	// others wait for it and find nothing to do.
	openAtOnce(t, dsn, 4)
	db := openAt(t, dsn)
	for _, tc := range []struct {
		note, query string
		want        int
	}{
		{note: "shared migrations", query: `SELECT COUNT(*) FROM schema_migrations`, want: SchemaVersion()},
		{note: "postgres migrations", query: `SELECT COUNT(*) FROM postgres_migrations`, want: len(postgresMigrations)},
		{note: "notify trigger", query: `SELECT COUNT(*) FROM pg_trigger WHERE tgname = 'changes_notify'`, want: 1},
	} {
		t.Run(tc.note, func(t *testing.T) {
			var n int
			if err := db.rdb.QueryRowContext(t.Context(), tc.query).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Fatalf("%s = %d; want %d", tc.query, n, tc.want)
			}
		})
	}
	if got := db.Location(); got != dsn {
		t.Fatalf("Location() = %q; want %q", got, dsn)
	}
	if h := db.Health(); h.Backend != "postgres" || h.Connected {
		t.Fatalf("Health() without a listener = %+v", h)
	}
}

func TestPostgresOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		note, dsn, err string
	}{
		{note: "bad port", dsn: "postgres://postgres@127.0.0.1:notaport/test",
			err: `opening store "postgres://postgres@127.0.0.1:notaport/test": parsing the URL: parse "postgres://postgres@127.0.0.1:notaport/test": invalid port ":notaport" after host`},
		{note: "bad sslmode", dsn: "postgresql://postgres@127.0.0.1:5432/test?sslmode=maybe",
			err: `opening store "postgresql://postgres@127.0.0.1:5432/test?sslmode=maybe": parsing the URL: cannot parse ` + "`postgresql://postgres@127.0.0.1:5432/test?connect_timeout=5&sslmode=maybe`" + `: failed to configure TLS (sslmode is invalid)`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := Open(t.Context(), tc.dsn)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v; want %q", err, tc.err)
			}
		})
	}
}

// A server that does not answer (a closed port; no server needed) fails
// Open and OpenReadOnly with the store named as a file's is, its password
// masked, wherever the URL holds it.
func TestPostgresOpenErrorNamesTheStore(t *testing.T) {
	const refused = "failed to connect to `user=postgres database=pat`: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused"
	for _, tc := range []struct{ dsn, shown string }{
		{"postgres://postgres:hunter2@127.0.0.1:1/pat", "postgres://postgres:xxxxx@127.0.0.1:1/pat"},
		{"postgresql://postgres@127.0.0.1:1/pat?password=hunter2&sslmode=disable", "postgresql://postgres@127.0.0.1:1/pat?password=xxxxx&sslmode=disable"},
		{"postgres://postgres@127.0.0.1:1/pat", "postgres://postgres@127.0.0.1:1/pat"},
	} {
		for _, op := range []struct {
			name, step string
			open       func(context.Context, string) (*DB, error)
		}{{"Open", "beginning transaction", Open}, {"OpenReadOnly", "reading schema version", OpenReadOnly}} {
			_, err := op.open(t.Context(), tc.dsn)
			want := fmt.Sprintf("opening store %q: %s: %s", tc.shown, op.step, refused)
			if err == nil || err.Error() != want || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s(%s) = %v\nwant %s", op.name, tc.dsn, err, want)
			}
		}
	}
}

// follower reads the change log of a store as an index does: after every
// wake-up, every change after the last one seen.
type follower struct {
	db   *DB
	wake <-chan struct{}
	seq  int64
}

func follow(ctx context.Context, t testing.TB, db *DB) *follower {
	t.Helper()
	f := &follower{db: db, wake: db.Wake(ctx)}
	// The first wake-up says the listener is connected.
	select {
	case <-f.wake:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener did not connect within 5s")
	}
	seq, err := db.Load(ctx, Visitor{})
	if err != nil {
		t.Fatal(err)
	}
	f.seq = seq
	return f
}

// await waits for a change-log entry of entity/key; it never polls the
// change log without a wake-up, so it measures the notification path.
func (f *follower) await(ctx context.Context, t testing.TB, entity, key string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		select {
		case <-f.wake:
		case <-deadline:
			t.Fatalf("%s %q not seen within %s", entity, key, within)
		}
		changes, err := f.db.Changes(ctx, f.seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			f.seq = c.Seq
			if c.Entity == entity && c.Key == key {
				return time.Since(start)
			}
		}
	}
}

func TestPostgresTwoHandlesSeeEachOther(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	// An approval needs a live token of a member (rules 2 and 10).
	a.now, b.now = func() time.Time { return t0.Add(time.Hour) }, func() time.Time { return t0.Add(time.Hour) }
	addMember(t, a, "bob", "octo-org")
	fa, fb := follow(ctx, t, a), follow(ctx, t, b)
	tok, g, err := a.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	fb.await(ctx, t, EntityGrant, grantKey(tok.ID, "octo-org"), time.Second)
	if got, ok, err := b.Grant(ctx, tok.ID, "octo-org"); err != nil || !ok || got.State != GrantPending {
		t.Fatalf("b.Grant = %+v, %v, %v", got, ok, err)
	}
	if _, err := b.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Approve: true, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	fa.await(ctx, t, EntityGrant, grantKey(tok.ID, "octo-org"), time.Second)
	if got, ok, err := a.Grant(ctx, tok.ID, "octo-org"); err != nil || !ok || got.State != GrantApproved || got.Reviewer != "alice" {
		t.Fatalf("a.Grant = %+v, %v, %v", got, ok, err)
	}
	if h := a.Health(); !h.Connected || h.LastContact.IsZero() || h.Reconnects != 0 {
		t.Fatalf("a.Health() = %+v", h)
	}
}

// Text PostgreSQL cannot store is refused as invalid input, with the same
// message as on SQLite, before it reaches the server.
func TestPostgresRefusesNUL(t *testing.T) {
	ctx := t.Context()
	db := openAt(t, testPostgresDSN(t))
	_, g, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Actor: "alice", Reason: "x\x00y"})
	if !errors.Is(err, ErrInvalid) || err.Error() != "reason: must not contain NUL" {
		t.Fatalf("Review = %v; want the invalid reason", err)
	}
	_, _, err = db.CreateToken(ctx, CreateTokenParams{Token: fgToken(2, "bob", "octo-org"), GrantState: GrantPending, Justification: "a\x00b"})
	if !errors.Is(err, ErrInvalid) || err.Error() != "reason: must not contain NUL" {
		t.Fatalf("CreateToken = %v; want the invalid reason", err)
	}
}

// TestPostgresPropagationLatency measures the time from a commit on one
// handle to the change being read on another through Wake and Changes, over
// many changes, and logs p50 and p99 (docs/PERFORMANCE.md).
func TestPostgresPropagationLatency(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	fb := follow(ctx, t, b)
	const changes = 200
	lat := make([]time.Duration, 0, changes)
	for i := range changes {
		login := fmt.Sprintf("user-%d", i)
		if _, err := a.Import(ctx, &Dump{Users: []DumpUser{{Login: login, ManagedBy: Null()}}}, "bench"); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, fb.await(ctx, t, EntityUser, login, time.Second))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("commit on one handle to change read on another, %d changes: p50 %s, p99 %s, max %s", changes,
		lat[changes/2].Round(10*time.Microsecond), lat[changes*99/100].Round(10*time.Microsecond), lat[changes-1].Round(10*time.Microsecond))
}

func TestPostgresConcurrentReview(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	// An approval needs a live token of a member (rules 2 and 10).
	a.now, b.now = func() time.Time { return t0.Add(time.Hour) }, func() time.Time { return t0.Add(time.Hour) }
	addMember(t, a, "bob", "octo-org")
	const requests = 20
	for i := byte(1); i <= requests; i++ {
		if _, _, err := a.CreateToken(ctx, CreateTokenParams{Token: fgToken(i, "bob", "octo-org"), GrantState: GrantPending}); err != nil {
			t.Fatal(err)
		}
	}
	// Each request is approved by a and denied by b at the same moment.
	for id := int64(1); id <= requests; id++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, db := range []*DB{a, b} {
			wg.Go(func() {
				_, errs[i] = db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{id}, Approve: i == 0, Actor: fmt.Sprint("owner", i)})
			})
		}
		wg.Wait()
		var ok, refused int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrInvalidState):
				refused++
				if want1, want2 := fmt.Sprintf("only pending requests can be reviewed: request %d is approved", id),
					fmt.Sprintf("only pending requests can be reviewed: request %d is denied", id); err.Error() != want1 && err.Error() != want2 {
					t.Fatalf("request %d: err = %q", id, err)
				}
			default:
				t.Fatalf("request %d: %v", id, err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("request %d: %d reviews succeeded and %d were refused; want 1 and 1", id, ok, refused)
		}
	}
	// One history: one review event per request, matching its state.
	rows, err := a.rdb.QueryContext(ctx, `SELECT r.id, r.state, COUNT(e.id), MIN(e.action), MIN(e.actor) FROM requests r
LEFT JOIN audit_events e ON e.request_id = r.id AND e.action IN ('request.approve', 'request.deny')
GROUP BY r.id, r.state ORDER BY r.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, events int64
		var state, action, actor string
		if err := rows.Scan(&id, &state, &events, &action, &actor); err != nil {
			t.Fatal(err)
		}
		n++
		want := map[string]string{GrantApproved: "request.approve owner0", GrantDenied: "request.deny owner1"}[state]
		if events != 1 || action+" "+actor != want {
			t.Fatalf("request %d (%s): %d review events, %s %s; want 1, %s", id, state, events, action, actor, want)
		}
	}
	if err := rows.Err(); err != nil || n != requests {
		t.Fatalf("%d requests, %v", n, err)
	}
}

// TestPostgresChangeOrder checks that change-log sequence numbers are handed
// out in commit order, so that a reader never skips a change that commits
// after a higher-numbered one.
func TestPostgresChangeOrder(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	writers := []*DB{openAt(t, dsn), openAt(t, dsn), openAt(t, dsn)}
	reader := openAt(t, dsn)
	const perWriter = 50
	var wg sync.WaitGroup
	for w, db := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := db.SetMeta(ctx, "k", "v"); err != nil {
					t.Error(err)
					return
				}
				if err := db.write(ctx, func(tx *sql.Tx) error {
					return logChange(ctx, tx, EntityUser, fmt.Sprintf("w%d-%d", w, i))
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Read the change log while the writers run, as a follower does.
	var seen []int64
	after := int64(0)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		changes, err := reader.Changes(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			seen = append(seen, c.Seq)
			after = c.Seq
		}
	}
	changes, err := reader.Changes(ctx, after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		seen = append(seen, c.Seq)
	}
	if len(seen) != len(writers)*perWriter || !sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i] < seen[j] }) {
		t.Fatalf("follower saw %d changes; want %d", len(seen), len(writers)*perWriter)
	}
}

// TestPostgresListenerReconnect kills the listener's connection on the
// server: the listener reconnects, signals, and a change committed while it
// was away is found in the change log.
func TestPostgresListenerReconnect(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	fb := follow(ctx, t, b)
	for round := 1; round <= 3; round++ {
		var killed int
		if err := a.rdb.QueryRowContext(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND query = 'LISTEN `+NotifyChannel+`'`).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("round %d: killed %d listeners; want 1", round, killed)
		}
		tok, _, err := a.CreateToken(ctx, CreateTokenParams{Token: fgToken(byte(round), "bob", "octo-org")})
		if err != nil {
			t.Fatal(err)
		}
		fb.await(ctx, t, EntityToken, fmt.Sprint(tok.ID), 2*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for h := b.Health(); h.Reconnects != int64(round) || !h.Connected; h = b.Health() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: Health() = %+v", round, h)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if h := b.Health(); h.LastError == "" {
		t.Fatalf("Health() = %+v; want the last error", h)
	}
}

func TestPostgresWakeClosesWithContext(t *testing.T) {
	db := openAt(t, testPostgresDSN(t))
	ctx, cancel := context.WithCancel(t.Context())
	ch := db.Wake(ctx)
	<-ch
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				if h := db.Health(); h.Connected {
					t.Fatalf("Health() after the listener ended = %+v", h)
				}
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx ended")
		}
	}
}

// TestPostgresDSN gives the external test package (postgres_bench_test.go)
// a database of its own.
var TestPostgresDSN = testPostgresDSN

// TestPostgresHeartbeat: a quiet listener pings on every heartbeat and
// keeps its connection (no reconnection churn), and still delivers.
func TestPostgresHeartbeat(t *testing.T) {
	ctx := t.Context()
	dsn := testPostgresDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	b.pg.heartbeat = 20 * time.Millisecond
	fb := follow(ctx, t, b)
	first := b.Health().LastContact
	time.Sleep(300 * time.Millisecond)
	h := b.Health()
	if !h.Connected || h.Reconnects != 0 || h.LastError != "" || !h.LastContact.After(first) {
		t.Fatalf("Health() after 15 heartbeats = %+v (first contact %s)", h, first)
	}
	tok, _, err := a.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org")})
	if err != nil {
		t.Fatal(err)
	}
	fb.await(ctx, t, EntityToken, fmt.Sprint(tok.ID), time.Second)
}

func TestPostgresLocationRedacted(t *testing.T) {
	dsn := testPostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	withPassword := *u
	withPassword.User = url.UserPassword(u.User.Username(), "s3cret")
	withParam := *u
	withParam.RawQuery += "&password=s3cret"
	for _, tc := range []struct {
		note, dsn, want string
	}{
		{note: "user information", dsn: withPassword.String(), want: strings.Replace(withPassword.String(), "s3cret", "xxxxx", 1)},
		// The parameters come back in name order.
		{note: "parameter", dsn: withParam.String(), want: redactedParam(withParam)},
	} {
		t.Run(tc.note, func(t *testing.T) {
			db := openAt(t, tc.dsn)
			if got := db.Location(); got != tc.want {
				t.Fatalf("Location() = %q; want %q", got, tc.want)
			}
		})
	}
}

func redactedParam(u url.URL) string {
	q := u.Query()
	q.Set("password", "xxxxx")
	u.RawQuery = q.Encode()
	return u.String()
}

// A reader creates no tables in a database without opa-pat's schema.
func TestPostgresOpenReadOnlyCreatesNoSchema(t *testing.T) {
	dsn := testPostgresDSN(t)
	for range 2 { // the second would find tables the first created
		db, err := OpenReadOnly(t.Context(), dsn)
		if db != nil {
			db.Close()
		}
		if !errors.Is(err, ErrNoSchema) {
			t.Fatalf("OpenReadOnly of a database without opa-pat's tables = %v; want ErrNoSchema", err)
		}
	}
}
