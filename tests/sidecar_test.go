package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/examples"
)

// Demo tokens of examples/fixtures.json.
const (
	bobLaptop = "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"                                                      // classic, repo scope
	bobDeploy = "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" // FG, grant pending
)

// sidecar is a running `opa-pat up`.
type sidecar struct {
	addr   string
	store  string
	seeded time.Time // about when up seeded the store
}

// healthCode is the status of GET path (/health, /health?plugins) on the
// OPA API at addr, 0 while nothing answers there.
func healthCode(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startRunSidecar starts OPA's own `run --server` on the SQLite store at
// storePath with plugins.pat from pat (YAML under "pat:", the store added),
// the policy from rego/pat and settings from a file, and waits until OPA's
// API answers /health (not every plugin need be ready).
func startRunSidecar(t *testing.T, bin, storePath, pat, settings, logLevel string, logs *syncBuffer) *sidecar {
	t.Helper()
	cfg := writeFile(t, t.TempDir(), "config.yaml", fmt.Sprintf("plugins:\n  pat:\n    store: {path: %q%s}\n", storePath, pat))
	s := &sidecar{addr: freeAddr(t), store: storePath}
	cmd := exec.Command(bin, "run", "--server", "--addr", s.addr, "--config-file", cfg, "--log-level", logLevel,
		"--ignore", "*_test.rego", filepath.Join(repoRoot(), "rego", "pat"), "pat.settings:"+settings)
	cmd.Stdout, cmd.Stderr = logs, logs
	startProcess(t, cmd, 10*time.Second, logs.String)
	poll(t, 30*time.Second, "the sidecar to answer", func() bool { return healthCode(s.addr, "/health") == http.StatusOK })
	return s
}

// startUp starts `opa-pat up` on free ports with a new store in a temporary
// directory and waits until OPA reports every plugin ready.
func startUp(t *testing.T) *sidecar {
	t.Helper()
	bin := binary(t)
	s := &sidecar{addr: freeAddr(t), store: filepath.Join(t.TempDir(), "pat.db"), seeded: time.Now()}
	var logs syncBuffer
	cmd := exec.Command(bin, "up", "--store", s.store, "--addr", s.addr,
		"--ext-authz-addr", freeAddr(t), "--admin-addr", "", "--log-level", "error")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	startProcess(t, cmd, 10*time.Second, logs.String)
	poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
	return s
}

// decide POSTs an input to /v1/data/pat/decision and returns the decision.
func (s *sidecar) decide(t *testing.T, raw, owner, repo, action string) map[string]any {
	t.Helper()
	input := map[string]any{"input": map[string]any{
		"credential": map[string]any{"type": "pat", "token": raw},
		"resource":   map[string]any{"owner": owner, "repository": repo},
		"action":     action,
		"permission": "contents",
	}}
	body, _ := json.Marshal(input)
	resp, err := http.Post("http://"+s.addr+"/v1/data/pat/decision", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/data/pat/decision: %s: %s", resp.Status, b)
	}
	var out struct {
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Result
}

func TestSidecarDecisions(t *testing.T) {
	s := startUp(t)
	for _, tc := range []struct {
		note  string
		token string
		repo  string
		want  string
	}{
		{note: "classic token with repo scope reads a private repository", token: bobLaptop, repo: "app",
			want: `{"allow": true, "status": 200, "reasons": [], "message": null, "documentation_url": null,
				"token_id": 1, "kind": "classic", "user": "bob", "expires_at_ns": EXPIRES_2030}`},
		{note: "fine-grained token awaiting approval", token: bobDeploy, repo: "app",
			want: `{"allow": false, "status": 403, "token_id": 7, "kind": "fine_grained", "user": "bob",
				"expires_at_ns": EXPIRES_2027,
				"message": "octo-org requires approval of fine-grained personal access tokens and this token's request is awaiting approval: the policy is set by the octo-org organization; ask an owner of octo-org to review the request",
				"reasons": ["octo-org requires approval of fine-grained personal access tokens and this token's request is awaiting approval: the policy is set by the octo-org organization; ask an owner of octo-org to review the request"],
				"documentation_url": "https://docs.github.com/organizations/managing-programmatic-access-to-your-organization/managing-requests-for-personal-access-tokens-in-your-organization"}`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			// The demo dates move with the day the store was seeded
			// (examples.FixturesAt): the expiries are fixtures.json's,
			// shifted; a start just before midnight (UTC) may shift one
			// day less than now.
			got := s.decide(t, tc.token, "octo-org", tc.repo, "read")
			var want map[string]any
			for _, at := range []time.Time{s.seeded, time.Now()} {
				shift := examples.Shift(at)
				w := strings.NewReplacer(
					"EXPIRES_2030", strconv.FormatInt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(shift).UnixNano(), 10),
					"EXPIRES_2027", strconv.FormatInt(time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC).Add(shift).UnixNano(), 10),
				).Replace(tc.want)
				want = nil
				if err := json.Unmarshal([]byte(w), &want); err != nil {
					t.Fatal(err)
				}
				if reflect.DeepEqual(got, want) {
					return
				}
			}
			t.Fatalf("decision:\n got %v\nwant %v", got, want)
		})
	}
}

func TestSidecarSeesCLIChanges(t *testing.T) {
	s := startUp(t)
	bin := binary(t)

	// A fine-grained token created with the CLI while the sidecar runs:
	// bob is a member of octo-org, which requires approval, so its request
	// is pending.
	out := []byte(runCLI(t, bin, nil, "token", "create", "--store", s.store, "--user", "bob", "--kind", "fine_grained",
		"--resource-owner", "octo-org", "--repositories", "app", "--permission", "contents=write",
		"--expires-in", "30d", "--name", "release", "--reason", "release automation", "--output", "json"))
	var created struct {
		ID      int64  `json:"id"`
		Token   string `json:"token"`
		Request *struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"request"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatalf("token create printed %s: %v", out, err)
	}
	if created.Token == "" || created.Request == nil || created.Request.State != "pending" {
		t.Fatalf("token create printed %s; want a token with a pending request", out)
	}

	status := func() string {
		d := s.decide(t, created.Token, "octo-org", "app", "write")
		return fmt.Sprintf("%v %v", d["allow"], d["status"])
	}
	poll(t, 3*time.Second, "the new token's request to be pending (403)", func() bool { return status() == "false 403" })

	start := time.Now()
	runCLI(t, bin, nil, "requests", "approve", "--store", s.store, "--org", "octo-org", strconv.FormatInt(created.Request.ID, 10),
		"--reason", "ok", "--actor", "alice")
	poll(t, 3*time.Second, "the approved token to be allowed", func() bool { return status() == "true 200" })
	t.Logf("approval reached the decision in %v", time.Since(start).Round(time.Millisecond))

	// The store keeps hashes only: no raw token in any of its files.
	files, _ := filepath.Glob(s.store + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{created.Token, bobLaptop, bobDeploy} {
			if bytes.Contains(b, []byte(raw)) {
				t.Errorf("%s holds the raw token %.8s…", filepath.Base(f), raw)
			}
		}
	}
}

// TestSidecarEvaluatesWithIRVM shows that OPA's REST API runs the decision
// on irvm, the sidecar's default evaluator: a plan cannot be traced, so an
// explain request gets irvm's error, where topdown would explain.
func TestSidecarEvaluatesWithIRVM(t *testing.T) {
	s := startUp(t)
	body := `{"input": {"credential": {"type": "pat", "token": "` + bobLaptop + `"}, "resource": {"owner": "octo-org", "repository": "app"}, "action": "read"}}`
	resp, err := http.Post("http://"+s.addr+"/v1/data/pat/allow?explain=full", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := "irvm: tracing and explanations need OPA's topdown evaluator (plugins.pat.evaluator: topdown)"
	if resp.StatusCode != http.StatusInternalServerError || out.Message != want {
		t.Fatalf("explain: %s %s; want 500 with %q", resp.Status, b, want)
	}
	// Without explain, the same query answers.
	resp2, err := http.Post("http://"+s.addr+"/v1/data/pat/allow", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	b, _ = io.ReadAll(resp2.Body)
	if resp2.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"result":true}` {
		t.Fatalf("allow: %s %s; want 200 {\"result\":true}", resp2.Status, b)
	}
}

// TestSidecarProcs starts `opa-pat up` without GOMAXPROCS and GOGC and with
// them, and reads the GOMAXPROCS and GOGC the gate reports when it starts:
// where Go would run on two CPUs the sidecar runs on one, its collector
// runs at GOGC 200, and the environment always wins (docs/config.md,
// "Processors and the collector").
func TestSidecarProcs(t *testing.T) {
	bin := binary(t)
	up := func(t *testing.T) []string {
		return []string{"up", "--store", filepath.Join(t.TempDir(), "pat.db"), "--addr", freeAddr(t),
			"--ext-authz-addr", freeAddr(t), "--admin-addr", "", "--log-level", "info", "--log-format", "text"}
	}
	procs := func(t *testing.T, args []string, env ...string) (procs int, gogc string) {
		var logs syncBuffer
		cmd := exec.Command(bin, args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GOGC=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		startProcess(t, cmd, 10*time.Second, logs.String)
		var n int
		poll(t, 30*time.Second, "the gate's start line", func() bool {
			_, after, ok := strings.Cut(logs.String(), "ext_authz gRPC server listening on ")
			if !ok {
				return false
			}
			_, after, ok = strings.Cut(after, "(GOMAXPROCS ")
			if !ok {
				return false
			}
			digits, after, ok := strings.Cut(after, ", GOGC ")
			if !ok {
				return false
			}
			gogc, _, ok = strings.Cut(after, ")")
			var err error
			n, err = strconv.Atoi(digits)
			return ok && err == nil
		})
		return n, gogc
	}
	t.Run("up, environment unset", func(t *testing.T) {
		if n, gogc := procs(t, up(t)); n == 2 || n < 1 || gogc != "200" {
			t.Fatalf("GOMAXPROCS %d, GOGC %s: Go's choice of two CPUs should have become one, and GOGC 200", n, gogc)
		}
	})
	t.Run("up, GOMAXPROCS=2 GOGC=100", func(t *testing.T) {
		if n, gogc := procs(t, up(t), "GOMAXPROCS=2", "GOGC=100"); n != 2 || gogc != "100" {
			t.Fatalf("GOMAXPROCS %d, GOGC %s; want the environment's 2 and 100", n, gogc)
		}
	})
	t.Run("run, environment unset", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "pat.db")
		runCLI(t, bin, nil, "store", "import", "--store", db, filepath.Join("..", "examples", "fixtures.json"))
		config := writeFile(t, dir, "config.yaml", fmt.Sprintf("plugins:\n  pat:\n    store: {path: %q}\n    ext_authz: {addr: %q}\n", db, freeAddr(t)))
		args := []string{"run", "--server", "--addr", freeAddr(t), "--config-file", config, "--log-level", "info", "--log-format", "text"}
		if n, gogc := procs(t, args); n == 2 || n < 1 || gogc != "200" {
			t.Fatalf("GOMAXPROCS %d, GOGC %s: Go's choice of two CPUs should have become one, and GOGC 200", n, gogc)
		}
	})
}

// TestSidecarSaysItsStoreFileWasReplacedUnderIt replaces the SQLite file under a running
// sidecar, as a restore or a second import at the same path would: the
// sidecar cannot follow the new file through the connections it holds on the
// old one, so past store.max_staleness token decisions deny (503) and the
// health check fails, naming what happened, instead of answering from the old
// file for ever.
func TestSidecarSaysItsStoreFileWasReplacedUnderIt(t *testing.T) {
	bin := binary(t)
	storePath := filepath.Join(t.TempDir(), "pat.db")
	fixtures := filepath.Join(repoRoot(), "examples", "fixtures.json")
	runCLI(t, bin, nil, "store", "import", "--store", storePath, fixtures)
	var logs syncBuffer
	s := startRunSidecar(t, bin, storePath, ", max_staleness: 5s", filepath.Join(repoRoot(), "examples", "settings.json"), "info", &logs)
	poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
	if d := s.decide(t, bobLaptop, "octo-org", "app", "read"); d["allow"] != true {
		t.Fatalf("before: %v", d)
	}

	if err := os.Rename(storePath, storePath+".old"); err != nil {
		t.Fatal(err)
	}
	runCLI(t, bin, nil, "store", "import", "--store", storePath, fixtures)
	var last map[string]any
	poll(t, 15*time.Second, "token decisions to deny", func() bool {
		last = s.decide(t, bobLaptop, "octo-org", "app", "read")
		return last["allow"] == false
	})
	if last["status"] != float64(503) || last["message"] != "the token could not be checked because the token store or the policy settings are not ready; try again shortly" {
		t.Fatalf("after the bound: %v", last)
	}
	// The status follows within a second (the plugin looks every second).
	poll(t, 5*time.Second, "/health?plugins to fail", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusInternalServerError })
	want := storePath + " was replaced by another file after the sidecar opened it; restart the sidecar to serve from the file now at that path"
	poll(t, 10*time.Second, "the log to name the replaced file", func() bool { return strings.Contains(logs.String(), want) })
	// The follower says so once per situation (removed, then replaced by the
	// import), not on every poll.
	if n := strings.Count(logs.String(), "the index is behind"); n > 2 {
		t.Fatalf("%d warnings that the index is behind:\n%s", n, logs.String())
	}
}

// TestSidecarInvalidSettings loads settings that break the schema as plain
// data (no bundle build checks them): where they are broken they would read
// as the defaults, which allow, so token decisions deny until they are
// fixed, and the status says why.
func TestSidecarInvalidSettings(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	storePath := filepath.Join(dir, "pat.db")
	runCLI(t, bin, nil, "store", "import", "--store", storePath, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	// octo-org forbids classic tokens through its enterprise, which is
	// named wrongly (an array): read as no enterprise, the organization's
	// own default would allow bob's classic token.
	bad := `{"enterprises": {"acme": {"owners": ["alice"], "classic_access": "restrict"}},
	         "organizations": {"octo-org": {"enterprise": ["acme"]}}}`
	good := `{"enterprises": {"acme": {"owners": ["alice"], "classic_access": "restrict"}},
	          "organizations": {"octo-org": {"enterprise": "acme"}}}`
	var logs syncBuffer
	s := startRunSidecar(t, bin, storePath, "", writeFile(t, dir, "settings.json", bad), "error", &logs)
	d := s.decide(t, bobLaptop, "octo-org", "app", "read")
	if d["allow"] != false || d["status"] != float64(503) {
		t.Fatalf("with invalid settings: %v", d)
	}
	want := `data.pat.settings are invalid (settings: organizations.octo-org.enterprise: ["acme"] is not a string or null); token decisions deny until they are fixed`
	poll(t, 5*time.Second, "the log to say why", func() bool { // JSON log lines: quotes escaped
		return strings.Contains(logs.String(), strings.ReplaceAll(want, `"`, `\"`))
	})
	poll(t, 5*time.Second, "/health?plugins to fail", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusInternalServerError })

	// Fixed through OPA's API: the enterprise's policy applies again.
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.addr+"/v1/data/pat/settings", strings.NewReader(good))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT settings: %s", resp.Status)
	}
	d = s.decide(t, bobLaptop, "octo-org", "app", "read")
	if d["allow"] != false || d["status"] != float64(403) || !strings.HasPrefix(d["message"].(string), "octo-org forbids access via a personal access token (classic): the policy is set by the acme enterprise") {
		t.Fatalf("with valid settings: %v", d)
	}
	poll(t, 5*time.Second, "/health?plugins to pass", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
}

// TestDebugLogsHoldNoToken: at --log-level debug OPA logs request bodies,
// and a query's input carries the raw token; the sidecar's stderr filter
// keeps it out of the log.
func TestDebugLogsHoldNoToken(t *testing.T) {
	bin := binary(t)
	s := &sidecar{addr: freeAddr(t), store: filepath.Join(t.TempDir(), "pat.db")}
	var logs syncBuffer
	cmd := exec.Command(bin, "up", "--store", s.store, "--addr", s.addr,
		"--ext-authz-addr", "", "--admin-addr", "", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	startProcess(t, cmd, 10*time.Second, logs.String)
	poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
	if d := s.decide(t, bobLaptop, "octo-org", "app", "read"); d["allow"] != true {
		t.Fatalf("decision: %v", d)
	}
	if d := s.decide(t, bobDeploy, "octo-org", "app", "read"); d["allow"] != false {
		t.Fatalf("decision: %v", d)
	}
	// A token without its last character: all of its random part, from which the checksum follows.
	if d := s.decide(t, bobLaptop[:len(bobLaptop)-1], "octo-org", "app", "read"); d["allow"] != false {
		t.Fatalf("decision: %v", d)
	}
	poll(t, 5*time.Second, "the three request bodies in the log, redacted", func() bool {
		out := logs.String()
		return strings.Count(out, `\"token\":\"ghp_[redacted]\"`) >= 2 && strings.Contains(out, `\"token\":\"github_pat_[redacted]\"`)
	})
	// The random parts (a classic token's 30 characters after ghp_, a fine-grained token's 22 after github_pat_).
	if out := logs.String(); strings.Contains(out, bobLaptop[4:34]) || strings.Contains(out, bobDeploy[11:33]) {
		t.Fatalf("the debug log holds a raw token:\n%s", out)
	}
}

// TestDecisionLogHoldsNoTokenAnywhere: a token outside the fields the mask
// names never reaches the decision log either: a credential given as a
// string, a whole package's result (whose private rules hold the raw
// token), the gate's mapping asked for directly, an ad-hoc query's text
// and its result.
func TestDecisionLogHoldsNoTokenAnywhere(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	s := &sidecar{addr: freeAddr(t), store: filepath.Join(dir, "pat.db")}
	config := writeFile(t, dir, "config.yaml", "decision_logs:\n  console: true\n")
	var logs syncBuffer
	cmd := exec.Command(bin, "up", "-c", config, "--store", s.store, "--addr", s.addr,
		"--ext-authz-addr", "", "--admin-addr", "", "--log-level", "info")
	cmd.Env = append(os.Environ(), "OPA_PAT_STDERR_REDACTION=off") // the mask, not the stderr filter
	cmd.Stdout, cmd.Stderr = &logs, &logs
	startProcess(t, cmd, 10*time.Second, logs.String)
	poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })

	request := `"resource": {"owner": "octo-org", "repository": "app"}, "action": "read"`
	envoy := `{"input": {"attributes": {"request": {"http": {"method": "GET", "path": "/repos/octo-org/app", "headers": {"authorization": "token ` + bobLaptop + `"}}}}, "parsed_path": ["repos", "octo-org", "app"], "parsed_query": {}}}`
	for _, tc := range []struct{ path, body, want string }{
		// The query first: it is dropped, so the four after it are the log's four events.
		{"/v1/query", `{"query": "t := pat.token(\"` + bobLaptop + `\")"}`, `"found":true`},
		{"/v1/data/pat", `{"input": {"credential": {"type": "pat", "token": "` + bobLaptop + `"}, ` + request + `}}`, `"allow":true`},
		{"/v1/data", `{"input": {"credential": {"type": "pat", "token": "` + bobLaptop + `"}, ` + request + `}}`, `"allow":true`},
		{"/v1/data/pat/decision", `{"input": {"credential": "` + bobLaptop + `", ` + request + `}}`, `"status":401`},
		{"/v1/data/pat/envoy/mapped", envoy, `"token":"` + bobLaptop + `"`},
		// OPA's mask cannot point inside an ad-hoc query's result: it is replaced whole.
		{"/v1/query", `{"query": "x := input.a", "input": {"a": "` + bobLaptop + `"}}`, `"x":"` + bobLaptop + `"`},
	} {
		resp, err := http.Post("http://"+s.addr+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), tc.want) {
			t.Fatalf("POST %s: %s %.300s", tc.path, resp.Status, b)
		}
	}
	poll(t, 5*time.Second, "five decisions in the log", func() bool {
		return strings.Count(logs.String(), `"msg":"Decision Log"`) >= 5
	})
	time.Sleep(200 * time.Millisecond)
	out := logs.String()
	if n := strings.Count(out, `"msg":"Decision Log"`); n != 5 {
		t.Fatalf("%d decisions in the log, want 5 (the first ad-hoc query dropped):\n%s", n, out)
	}
	if strings.Contains(out, bobLaptop) {
		t.Fatalf("the decision log holds the raw token:\n%s", out)
	}
	for _, want := range []string{`"/result/_raw_token"`, `"/result/pat/_raw_token"`, `"/input/credential"`, `"/result/credential/token"`, `"/input/a"`, `"/result"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %s was masked:\n%s", want, out)
		}
	}
}

// TestSidecarStoreFileCorrupted: a store file corrupted in place fails the
// index's reads, not the connection; past max_staleness token decisions
// deny, and the status names SQLite's error rather than "no error reported",
// and the store as reachable (its file opens; its reads fail).
func TestSidecarStoreFileCorrupted(t *testing.T) {
	bin := binary(t)
	storePath := filepath.Join(t.TempDir(), "pat.db")
	runCLI(t, bin, nil, "store", "import", "--store", storePath, filepath.Join(repoRoot(), "examples", "fixtures.json"))
	var logs syncBuffer
	s := startRunSidecar(t, bin, storePath, ", max_staleness: 5s", filepath.Join(repoRoot(), "examples", "settings.json"), "info", &logs)
	poll(t, 30*time.Second, "the sidecar to be ready", func() bool { return healthCode(s.addr, "/health?plugins") == http.StatusOK })
	f, err := os.OpenFile(storePath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// Every page after the header's, wherever the tables are: the
	// change log is the last table (schema migration 4 rebuilt it).
	junk := bytes.Repeat([]byte{0xa5}, int(info.Size())-4096)
	if _, err := f.WriteAt(junk, 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	poll(t, 15*time.Second, "token decisions to deny", func() bool {
		return s.decide(t, bobLaptop, "octo-org", "app", "read")["allow"] == false
	})
	poll(t, 10*time.Second, "the status to name SQLite's error", func() bool {
		out := logs.String()
		return strings.Contains(out, "reachable but its change log cannot be read (reading the store's change log") && strings.Contains(out, "malformed")
	})
	if out := logs.String(); strings.Contains(out, "no error reported") {
		t.Fatalf("the status lost the cause:\n%s", out)
	}
}
