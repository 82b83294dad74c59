package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store/pgtest"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/storetest"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// pgDatabase creates a database of its own on the test server
// (OPA_PAT_TEST_POSTGRES_DSN, or the local default), drops it when the test
// ends and returns its DSN; it skips the test when no server answers.
func pgDatabase(t *testing.T) string {
	t.Helper()
	return pgtest.Database(t, "pat_e2e_")
}

// pgSidecar is a running `opa-pat run --server` on a PostgreSQL store.
type pgSidecar struct {
	sidecar
	admin string // the admin API's address, "" without one
	logs  *syncBuffer
}

// startPGSidecar starts OPA's own `run --server` with the pat plugin on a
// PostgreSQL store, the policy from rego/pat and the example settings, and
// waits until every plugin is ready; ready is how long that took.
func startPGSidecar(t *testing.T, dsn, maxStaleness string, withAdmin bool) (s *pgSidecar, ready time.Duration) {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("plugins:\n  pat:\n    store:\n      postgres: {dsn: %q}\n      max_staleness: %q\n", dsn, maxStaleness)
	admin := ""
	if withAdmin {
		admin = freeAddr(t)
		cfg += fmt.Sprintf("    admin: {addr: %q}\n", admin)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s = &pgSidecar{sidecar: sidecar{addr: freeAddr(t), store: dsn}, admin: admin, logs: &syncBuffer{}}
	root := repoRoot()
	cmd := exec.Command(bin, "run", "--server", "--addr", s.addr, "--config-file", cfgPath, "--log-level", "info",
		"--ignore", "*_test.rego", filepath.Join(root, "rego", "pat"), "pat.settings:"+filepath.Join(root, "examples", "settings.json"))
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			var lines []string
			for l := range strings.SplitSeq(s.logs.String(), "\n") {
				if !strings.Contains(l, `"msg":"Received request."`) && !strings.Contains(l, `"msg":"Sent response."`) {
					lines = append(lines, l)
				}
			}
			t.Logf("sidecar %s output (last 4 KiB, without request lines):\n%s", s.addr, tail(strings.Join(lines, "\n"), 4096))
		}
	})
	poll(t, 5*time.Minute, "the sidecar to be ready", func() bool { return s.healthy() })
	return s, time.Since(start)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// healthy asks /health?plugins: 200 once every plugin reports OK.
func (s *pgSidecar) healthy() bool {
	resp, err := http.Get("http://" + s.addr + "/health?plugins")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// loggedSince reports whether the sidecar logged substr after the first
// mark bytes of its output (the pat plugin logs every status change).
func (s *pgSidecar) loggedSince(mark int, substr string) bool {
	logs := s.logs.String()
	return mark <= len(logs) && strings.Contains(logs[mark:], substr)
}

// verdict is "allow status" of a decision, without failing the test on a
// transport error (for use under load and while the database is down).
func (s *pgSidecar) verdict(raw, owner, repo, action string) string {
	input := map[string]any{"input": map[string]any{
		"credential": map[string]any{"type": "pat", "token": raw},
		"resource":   map[string]any{"owner": owner, "repository": repo},
		"action":     action,
		"permission": "contents",
	}}
	body, _ := json.Marshal(input)
	resp, err := http.Post("http://"+s.addr+"/v1/data/pat/decision", "application/json", bytes.NewReader(body))
	if err != nil {
		return "error " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Result struct {
			Allow  bool `json:"allow"`
			Status int  `json:"status"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "error " + string(b)
	}
	return fmt.Sprintf("%v %d", out.Result.Allow, out.Result.Status)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// TestPostgresTwoSidecars runs two sidecars on one PostgreSQL database:
// changes made with the CLI and through the store reach both sidecars'
// decisions within a second.
func TestPostgresTwoSidecars(t *testing.T) {
	dsn := pgDatabase(t)
	bin := binary(t)
	runCLI(t, bin, nil, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	a, _ := startPGSidecar(t, dsn, "60s", false)
	b, _ := startPGSidecar(t, dsn, "60s", false)
	sidecars := []*pgSidecar{a, b}

	waitBoth := func(what, raw, action, want string) time.Duration {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		took := make([]time.Duration, len(sidecars))
		for i, s := range sidecars {
			wg.Go(func() {
				deadline := start.Add(time.Second)
				for {
					if s.verdict(raw, "octo-org", "app", action) == want {
						took[i] = time.Since(start)
						return
					}
					if time.Now().After(deadline) {
						took[i] = -1
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		for i, d := range took {
			if d < 0 {
				t.Fatalf("%s: sidecar %d did not answer %q within 1s (now %q)", what, i, want, sidecars[i].verdict(raw, "octo-org", "app", action))
			}
		}
		return max(took[0], took[1])
	}

	// The CLI: a token created and approved reaches both sidecars.
	created := createReleaseToken(t, bin, dsn)
	if created.Request.State != "pending" {
		t.Fatalf("token create: request %+v; want a pending request", created.Request)
	}
	waitBoth("created (pending)", created.Token, "write", "false 403")
	runCLI(t, bin, nil, "requests", "approve", "--store", dsn, "--org", "octo-org", strconv.FormatInt(created.Request.ID, 10), "--actor", "alice")
	d := waitBoth("approved with the CLI", created.Token, "write", "true 200")
	t.Logf("CLI approval reached both sidecars %s after the CLI exited", d.Round(time.Millisecond))
	runCLI(t, bin, nil, "requests", "revoke", "--store", dsn, "--org", "octo-org", strconv.FormatInt(created.ID, 10), "--actor", "alice")
	waitBoth("grant revoked with the CLI", created.Token, "write", "false 403")
	runCLI(t, bin, nil, "token", "revoke", "--store", dsn, strconv.FormatInt(created.ID, 10))
	waitBoth("token revoked with the CLI", created.Token, "write", "false 401")

	// Propagation latency: a store handle (as another sidecar's admin API
	// holds one) creates a token, approves it, revokes the grant; time from
	// each commit to both sidecars' decisions.
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const rounds = 25
	var lat []time.Duration
	for i := range rounds {
		raw, err := token.Generate(store.KindFineGrained, token.DefaultPrefixes)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		tok, g, err := db.CreateToken(t.Context(), store.CreateTokenParams{GrantState: store.GrantPending, Token: store.Token{
			Hash: token.Hash(raw), Name: fmt.Sprintf("round %d", i), Kind: store.KindFineGrained, User: "bob",
			ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"app"},
			Permissions: map[string]string{"contents": "write", "metadata": "read"}, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		lat = append(lat, waitBoth("created", raw, "write", "false 403"))
		if _, err := db.Review(t.Context(), store.ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Approve: true, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, waitBoth("approved", raw, "write", "true 200"))
		if _, err := db.RevokeGrants(t.Context(), "octo-org", []int64{tok.ID}, "alice", ""); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, waitBoth("revoked", raw, "write", "false 403"))
	}
	t.Logf("propagation to both sidecars over %d changes: p50 %s, p99 %s, max %s", len(lat),
		percentile(lat, 0.5).Round(100*time.Microsecond), percentile(lat, 0.99).Round(100*time.Microsecond), slices.Max(lat).Round(100*time.Microsecond))
}

// TestPostgresRestart stops PostgreSQL under load and starts it again:
// decisions keep coming from the index until store.max_staleness, then
// token decisions deny (no allow after the bound), and everything recovers
// once the server is back. It stops the machine's PostgreSQL cluster, which
// disturbs every other test using it, so it runs only with
// OPA_PAT_TEST_PG_RESTART=1 (and needs pg_ctlcluster).
func TestPostgresRestart(t *testing.T) {
	if os.Getenv("OPA_PAT_TEST_PG_RESTART") != "1" {
		t.Skip("stops the local PostgreSQL cluster; set OPA_PAT_TEST_PG_RESTART=1 to run it")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Skipf("no local PostgreSQL cluster to restart: %v", err)
	}
	cluster := func(action string) {
		t.Helper()
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", action).CombinedOutput()
		if err != nil {
			t.Fatalf("pg_ctlcluster %s: %v\n%s", action, err, out)
		}
	}
	dsn := pgDatabase(t)
	bin := binary(t)
	runCLI(t, bin, nil, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	const bound = 5 * time.Second
	a, _ := startPGSidecar(t, dsn, bound.String(), false)
	b, _ := startPGSidecar(t, dsn, bound.String(), false)

	// Load: both sidecars asked continuously for bob's classic token.
	type sample struct {
		at      time.Time
		verdict string
	}
	var mu sync.Mutex
	var samples []sample
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, s := range []*pgSidecar{a, b} {
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					v := s.verdict(bobLaptop, "octo-org", "app", "read")
					mu.Lock()
					samples = append(samples, sample{time.Now(), v})
					mu.Unlock()
				}
			})
		}
	}
	time.Sleep(time.Second)
	markA, markB := len(a.logs.String()), len(b.logs.String())
	stopAt := time.Now()
	cluster("stop")
	stopped := time.Since(stopAt)
	stopDone := time.Now()
	restarted := false
	defer func() {
		if !restarted {
			cluster("start")
		}
	}()
	// Within the bound the sidecars answer from their index; past it
	// they deny and report the outage.
	poll(t, bound+5*time.Second, "both sidecars to report the outage", func() bool { return !a.healthy() && !b.healthy() })
	unhealthyAfter := time.Since(stopAt)
	time.Sleep(2 * time.Second)
	// The server answers before pg_ctlcluster returns: recovery counts from
	// the call.
	startAt := time.Now()
	cluster("start")
	restarted = true
	poll(t, 30*time.Second, "both sidecars to recover", func() bool {
		return a.healthy() && b.healthy() && a.verdict(bobLaptop, "octo-org", "app", "read") == "true 200" &&
			b.verdict(bobLaptop, "octo-org", "app", "read") == "true 200"
	})
	recovered := time.Since(startAt)
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	// No allow after the bound, while the database was down.
	var lastAllow, firstDeny time.Time
	counts := map[string]int{}
	for _, s := range samples {
		if s.at.Before(stopDone) || !s.at.Before(startAt) {
			continue
		}
		counts[s.verdict]++
		switch {
		case s.verdict == "true 200":
			lastAllow = s.at
		case firstDeny.IsZero():
			firstDeny = s.at
		}
	}
	// The index last caught up before the server was gone, so allows may
	// run until then + bound, and never past it.
	if !lastAllow.IsZero() && lastAllow.Sub(stopDone) > bound {
		t.Fatalf("an allow %s after the server stopped, past the %s bound", lastAllow.Sub(stopDone), bound)
	}
	if firstDeny.IsZero() || counts["false 503"] == 0 {
		t.Fatalf("no denial while the database was down: %v", counts)
	}
	// Each status change is logged: the outage past the bound, and the
	// return to OK once the listener is back too (after its backoff).
	for _, s := range []*pgSidecar{a, b} {
		mark := map[*pgSidecar]int{a: markA, b: markB}[s]
		if !s.loggedSince(mark, "token decisions deny until it catches up") {
			t.Errorf("sidecar %s did not log the outage", s.addr)
		}
		poll(t, 10*time.Second, "the sidecar to log its recovery", func() bool { return s.loggedSince(mark, "the index has caught up") })
	}
	t.Logf("stop took %s; last allow %s after the stop, first denial %s after it; unhealthy %s after it; recovered %s after the start; verdicts while down: %v",
		stopped.Round(time.Millisecond), lastAllow.Sub(stopAt).Round(time.Millisecond), firstDeny.Sub(stopAt).Round(time.Millisecond),
		unhealthyAfter.Round(time.Millisecond), recovered.Round(time.Millisecond), counts)

	// A change made after the restart reaches both sidecars.
	runCLI(t, bin, nil, "token", "revoke", "--store", dsn, "1")
	// (The listeners may still be backing off: the index's 1 s poll is the
	// safety net.)
	poll(t, 2*time.Second, "the revocation to reach both sidecars", func() bool {
		return a.verdict(bobLaptop, "octo-org", "app", "read") == "false 401" && b.verdict(bobLaptop, "octo-org", "app", "read") == "false 401"
	})
}

// TestPostgresStartup1M measures a sidecar's start-up to ready on a
// PostgreSQL store with 1M tokens (docs/PERFORMANCE.md). It takes minutes,
// so it runs only with OPA_PAT_BENCH_1M=1.
func TestPostgresStartup1M(t *testing.T) {
	if os.Getenv("OPA_PAT_BENCH_1M") != "1" {
		t.Skip("takes minutes; set OPA_PAT_BENCH_1M=1 to run it")
	}
	n := 1_000_000
	if v := os.Getenv("OPA_PAT_BENCH_TOKENS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dsn := pgDatabase(t)
	bin := binary(t)
	lite := filepath.Join(t.TempDir(), "pat.db")
	db, err := store.Open(t.Context(), lite)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w, err := storetest.Populate(t.Context(), db, n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	t.Logf("populated SQLite with %d tokens in %s", n, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	out := runCLI(t, bin, nil, "store", "migrate", "--from", lite, "--to", dsn)
	t.Logf("store migrate to PostgreSQL: %s (%s)", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))

	s, ready := startPGSidecar(t, dsn, "60s", false)
	t.Logf("sidecar start-up to ready with %d tokens from PostgreSQL: %s", n, ready.Round(time.Millisecond))
	if v := s.verdict(w.Classic[0].Raw, w.Classic[0].Org, w.Classic[0].Repo, "read"); v != "true 200" {
		t.Fatalf("a generated classic token: %s", v)
	}
}

// adminCall sends a request to a sidecar's admin API as the holder of raw
// and returns the status and body.
func (s *pgSidecar) adminCall(t *testing.T, method, path, raw string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+s.admin+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestPostgresFleetAdminAPI runs three sidecars with their admin APIs on one
// database: an owner reviews and revokes through each in turn, and every
// change reaches all three sidecars' decisions within a second; two owners
// approving the same request through two sidecars at once leave one review.
func TestPostgresFleetAdminAPI(t *testing.T) {
	dsn := pgDatabase(t)
	bin := binary(t)
	runCLI(t, bin, nil, "store", "import", "--store", dsn, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	newToken := func(user, kind string, scopes []string) (string, store.Token, *store.Grant) {
		t.Helper()
		raw, err := token.Generate(kind, token.DefaultPrefixes)
		if err != nil {
			t.Fatal(err)
		}
		tk := store.Token{Hash: token.Hash(raw), Name: "t", Kind: kind, User: user, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}
		p := store.CreateTokenParams{Token: tk}
		if kind == store.KindFineGrained {
			p.Token.ResourceOwner, p.Token.RepositorySelection, p.Token.Repositories = "octo-org", "selected", []string{"app"}
			p.Token.Permissions = map[string]string{"contents": "write", "metadata": "read"}
			p.GrantState = store.GrantPending
		}
		created, g, err := db.CreateToken(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		return raw, created, g
	}
	owner, _, _ := newToken("alice", store.KindClassic, []string{"admin:org"})

	var sidecars []*pgSidecar
	for range 3 {
		s, _ := startPGSidecar(t, dsn, "60s", true)
		sidecars = append(sidecars, s)
	}
	everywhere := func(what, raw, want string) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			n := 0
			for _, s := range sidecars {
				if s.verdict(raw, "octo-org", "app", "write") == want {
					n++
				}
			}
			if n == len(sidecars) {
				return time.Since(start)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not %q on every sidecar within 1s", what, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	const reqs = "/orgs/octo-org/personal-access-token-requests"
	var lat []time.Duration
	for i := range 3 * len(sidecars) {
		raw, tk, g := newToken("bob", store.KindFineGrained, nil)
		everywhere("created", raw, "false 403")
		via := sidecars[i%len(sidecars)]
		if status, body := via.adminCall(t, "POST", reqs, owner, map[string]any{"pat_request_ids": []int64{g.ID}, "action": "approve"}); status != http.StatusAccepted {
			t.Fatalf("approve through sidecar %d: %d %s", i%len(sidecars), status, body)
		}
		lat = append(lat, everywhere("approved", raw, "true 200"))
		via = sidecars[(i+1)%len(sidecars)]
		if status, body := via.adminCall(t, "POST", fmt.Sprintf("/orgs/octo-org/personal-access-tokens/%d", tk.ID), owner, map[string]any{"action": "revoke"}); status != http.StatusNoContent {
			t.Fatalf("revoke through sidecar %d: %d %s", (i+1)%len(sidecars), status, body)
		}
		lat = append(lat, everywhere("revoked", raw, "false 403"))
	}
	t.Logf("admin API change through one sidecar to the decisions of all %d, over %d changes: p50 %s, p99 %s", len(sidecars), len(lat),
		percentile(lat, 0.5).Round(100*time.Microsecond), percentile(lat, 0.99).Round(100*time.Microsecond))

	// The same request approved through two sidecars at the same moment.
	for round := range 5 {
		_, _, g := newToken("bob", store.KindFineGrained, nil)
		statuses := make([]int, 2)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() {
				statuses[i], _ = sidecars[i].adminCall(t, "POST", reqs, owner, map[string]any{"pat_request_ids": []int64{g.ID}, "action": "approve"})
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		if statuses[0] != http.StatusAccepted || statuses[1] == http.StatusAccepted || statuses[1] < 400 {
			t.Fatalf("round %d: two concurrent approvals answered %v; want one 202 and one refusal", round, statuses)
		}
		events, err := db.ListAudit(t.Context(), store.AuditFilter{RequestID: g.ID})
		if err != nil {
			t.Fatal(err)
		}
		var reviews int
		for _, e := range events {
			if e.Action == store.ActionRequestApprove {
				reviews++
			}
		}
		if reviews != 1 {
			t.Fatalf("round %d: %d approvals in the audit log; want 1", round, reviews)
		}
	}
}

// TestPostgresCLIMigrate moves the example world from SQLite to PostgreSQL
// and back with `opa-pat store migrate`: a non-empty target is refused, the
// exports of all three stores are equal, and every CLI command works on the
// PostgreSQL store.
func TestPostgresCLIMigrate(t *testing.T) {
	dsn := pgDatabase(t)
	dir := t.TempDir()
	lite, back := filepath.Join(dir, "pat.db"), filepath.Join(dir, "back.db")
	cliOK(t, "store", "import", "--store", lite, filepath.Join(repoRoot(), "examples", "fixtures.json"))

	out := decode[struct {
		Rows map[string]int64 `json:"rows"`
	}](t, cliOK(t, "store", "migrate", "--from", lite, "--to", dsn, "--output", "json"))
	if out.Rows["tokens"] != 13 || out.Rows["requests"] != 6 {
		t.Fatalf("migrate copied %v; want 13 tokens and 6 requests", out.Rows)
	}
	cliFail(t, "error: migrating "+lite+" to "+dsn+": the target store is not empty (5 users, 7 memberships, 6 repositories, 13 tokens, 6 requests, 7 audit_events); pass --replace to overwrite it",
		"store", "migrate", "--from", lite, "--to", dsn)
	cliOK(t, "store", "migrate", "--from", lite, "--to", dsn, "--replace")
	cliFail(t, "error: --from and --to name the same store", "store", "migrate", "--from", dsn, "--to", dsn)

	// A mistyped source empties nothing: a missing file is not created, and
	// a store without records is refused, --replace or not.
	before := cliOK(t, "store", "export", "--store", dsn)
	typo := filepath.Join(dir, "pat-typo.db")
	cliFail(t, "error: --from: no store at "+typo+": no such file or directory", "store", "migrate", "--from", typo, "--to", dsn, "--replace")
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the mistyped source was created: %v", err)
	}
	// A store with its schema and no records (a command that only reads
	// does not create one).
	empty := filepath.Join(dir, "empty.db")
	if db, err := store.Open(t.Context(), empty); err != nil {
		t.Fatal(err)
	} else {
		db.Close()
	}
	cliFail(t, "error: migrating "+empty+" to "+dsn+": the source store holds no records; check --from", "store", "migrate", "--from", empty, "--to", dsn, "--replace")
	if after := cliOK(t, "store", "export", "--store", dsn); after != before {
		t.Fatalf("a refused migration changed the target")
	}

	// The CLI on the PostgreSQL store.
	pending := decode[[]map[string]any](t, cliOK(t, "requests", "list", "--store", dsn, "--org", "octo-org", "--state", "pending", "--output", "json"))
	if len(pending) != 1 {
		t.Fatalf("pending requests on PostgreSQL: %v", pending)
	}
	cliOK(t, "requests", "approve", "--store", dsn, "--org", "octo-org", fmt.Sprint(pending[0]["id"]), "--actor", "alice")

	cliOK(t, "store", "migrate", "--from", dsn, "--to", back)
	exports := map[string]string{}
	for _, s := range []string{dsn, back} {
		exports[s] = cliOK(t, "store", "export", "--store", s)
	}
	if exports[dsn] != exports[back] {
		t.Fatalf("exports differ:\nPostgreSQL: %s\nSQLite: %s", exports[dsn], exports[back])
	}
	if !strings.Contains(exports[back], `"state": "approved"`) {
		t.Fatalf("the approval made on PostgreSQL is not in the SQLite copy: %s", exports[back])
	}
}

// createdToken is what token create --output json prints, in part.
type createdToken struct {
	ID      int64  `json:"id"`
	Token   string `json:"token"`
	Request struct {
		ID    int64  `json:"id"`
		State string `json:"state"`
	} `json:"request"`
}

// createReleaseToken creates bob's fine-grained token for octo-org/app
// (contents: write, 30 days) with the CLI, which files a request for it.
func createReleaseToken(t *testing.T, bin, dsn string) createdToken {
	t.Helper()
	out := runCLI(t, bin, nil, "token", "create", "--store", dsn, "--user", "bob", "--kind", "fine_grained",
		"--resource-owner", "octo-org", "--repositories", "app", "--permission", "contents=write",
		"--expires-in", "30d", "--name", "release", "--reason", "release automation", "--output", "json")
	var created createdToken
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("token create printed %s: %v", out, err)
	}
	return created
}
