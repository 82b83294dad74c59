package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// recorder is a gate that keeps every request it is sent and denies pushes
// with 403.
type recorder struct {
	authv3.UnimplementedAuthorizationServer
	mu   sync.Mutex
	reqs []*authv3.CheckRequest
}

func (r *recorder) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if strings.Contains(req.GetAttributes().GetRequest().GetHttp().GetPath(), "receive-pack") {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: 7},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			}},
		}, nil
	}
	return okResponse, nil
}

func serveRecorder(t *testing.T) (*recorder, string) {
	return serveRecorderOn(t, "tcp", "127.0.0.1:0")
}

func serveRecorderOn(t *testing.T, network, addr string) (*recorder, string) {
	t.Helper()
	lis, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, r)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	if network == "unix" {
		return r, "unix://" + lis.Addr().String()
	}
	return r, lis.Addr().String()
}

func runJSON(t *testing.T, o options) summary {
	t.Helper()
	var out bytes.Buffer
	if err := run(o, &out); err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	return s
}

func baseOptions(addr string) options {
	return options{
		addr: addr, workers: 1, duration: 10 * time.Second, owner: "octo-org", repos: "app",
		mix: "git", output: "json", timeout: 5 * time.Second,
	}
}

// The gate receives, from the pre-encoded frames, exactly the requests the
// generated client would have sent, and the answers are counted by status.
func TestClosedLoopSendsEnvoyRequests(t *testing.T) {
	rec, addr := serveRecorder(t)
	o := baseOptions(addr)
	o.n = 8
	s := runJSON(t, o)
	if s.Requests != 8 || s.Errors != 0 {
		t.Fatalf("requests %d, errors %d (%s); want 8 and 0", s.Requests, s.Errors, s.LastError)
	}
	// One worker takes 8 consecutive requests of the 4 Git shapes: two
	// clones, two fetches, two push advertisements and two pushes.
	if want := map[string]int{"200": 4, "403": 4}; !equalCounts(s.Statuses, want) {
		t.Fatalf("statuses %v, want %v", s.Statuses, want)
	}
	if len(rec.reqs) != 8 {
		t.Fatalf("the gate saw %d requests, want 8", len(rec.reqs))
	}
	want, err := buildRequests(o, []target{{token: "ghp_loadgenLOADGENloadgenLOADGENlo000000"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range rec.reqs {
		// The time is taken when the requests are built, once per run.
		got.GetAttributes().GetRequest().Time = nil
		var found bool
		for _, w := range want {
			var wr authv3.CheckRequest
			if err := proto.Unmarshal(w, &wr); err != nil {
				t.Fatal(err)
			}
			wr.GetAttributes().GetRequest().Time = nil
			if proto.Equal(got, &wr) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("the gate received a request that was not built: %v", got)
		}
	}
	h := rec.reqs[0].GetAttributes().GetRequest().GetHttp()
	if h.GetHost() != "git.example.com" || !strings.HasPrefix(h.GetHeaders()["authorization"], "Basic ") ||
		!strings.HasPrefix(h.GetPath(), "/octo-org/app.git/") {
		t.Fatalf("unexpected request: %v", h)
	}
}

func TestFixedRateCountsEverySlot(t *testing.T) {
	_, addr := serveRecorder(t)
	o := baseOptions(addr)
	o.workers, o.conns, o.rate, o.n = 4, 2, 1000, 200
	s := runJSON(t, o)
	if s.Mode != "fixed-rate" || s.Requests != 200 || s.Errors != 0 {
		t.Fatalf("mode %s, requests %d, errors %d (%s); want fixed-rate, 200, 0", s.Mode, s.Requests, s.Errors, s.LastError)
	}
	if s.Statuses["200"]+s.Statuses["403"] != 200 || s.Statuses["200"] == 0 || s.Statuses["403"] == 0 {
		t.Fatalf("statuses %v", s.Statuses)
	}
	// 200 slots at 1,000 a second take at least 199 ms.
	if s.Seconds < 0.199 {
		t.Fatalf("200 requests at 1,000 req/s took %.3f s", s.Seconds)
	}
	if s.ServiceJSON == nil || s.ServiceJSON["p50"] > s.LatencyJSON["p50"] {
		t.Fatalf("service %v should be no longer than latency %v", s.ServiceJSON, s.LatencyJSON)
	}
}

// The pacer sends every slot, each due an interval after the one before, and
// none before it is due.
func TestPace(t *testing.T) {
	slots := make(chan time.Time, 100)
	const interval = 2 * time.Millisecond
	errc := make(chan error, 1)
	go func() { errc <- pace(interval, 50, slots) }()
	var due []time.Time
	for d := range slots {
		if early := time.Until(d); early > 0 {
			t.Fatalf("slot %d sent %v before it was due", len(due), early)
		}
		due = append(due, d)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(due) != 50 {
		t.Fatalf("%d slots, want 50", len(due))
	}
	for i := 1; i < len(due); i++ {
		if d := due[i].Sub(due[i-1]); d != interval {
			t.Fatalf("slots %d and %d are %v apart, want %v", i-1, i, d, interval)
		}
	}
}

func TestRawCodecRefusesOtherMessages(t *testing.T) {
	if _, err := (rawCodec{}).Marshal(&authv3.CheckRequest{}); err == nil {
		t.Fatal("Marshal accepted a message that is not a frame")
	}
	if err := (rawCodec{}).Unmarshal([]byte{1}, &authv3.CheckResponse{}); err == nil {
		t.Fatal("Unmarshal accepted a message that is not a frame")
	}
}

// A gate on a Unix socket (the gate's addr unix:///path) is loaded as one on
// TCP.
func TestUnixSocket(t *testing.T) {
	rec, addr := serveRecorderOn(t, "unix", filepath.Join(t.TempDir(), "gate.sock"))
	o := baseOptions(addr)
	o.n = 4
	s := runJSON(t, o)
	if s.Requests != 4 || s.Errors != 0 || len(rec.reqs) != 4 {
		t.Fatalf("requests %d, errors %d (%s), received %d; want 4, 0 and 4", s.Requests, s.Errors, s.LastError, len(rec.reqs))
	}
}

func TestRefusesRemoteAddresses(t *testing.T) {
	o := baseOptions("192.0.2.1:9191")
	err := run(o, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "192.0.2.1 is not a loopback address") {
		t.Fatalf("got %v, want a refusal of the remote address", err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// A shaped stub spends the CPU time asked for on each Check and keeps the
// live heap asked for.
func TestShapedStub(t *testing.T) {
	n := 0
	for p := liveHeap(1); p != nil; p = p.next {
		n++
	}
	if n != 1<<20/64 {
		t.Fatalf("a 1 MB live heap has %d nodes, want %d", n, 1<<20/64)
	}
	s := stub{shape: stubShape{spin: 20 * time.Millisecond, garbage: 4096}}
	start := time.Now()
	resp, err := s.Check(t.Context(), nil)
	if took := time.Since(start); err != nil || resp != okResponse || took < 20*time.Millisecond {
		t.Fatalf("Check = %v, %v after %s; want OK after at least 20ms", resp, err, took)
	}
}

func TestShowPrintsTheAnswerAndSendsTheCredentialAsGitWould(t *testing.T) {
	rec, addr := serveRecorder(t)
	o := options{addr: addr, timeout: 5 * time.Second}
	const token = "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"
	cases := []struct {
		request, tokens, wantAuth, wantOut string
	}{
		{"GET /octo-org/app.git/info/refs?service=git-upload-pack", "", "",
			"200 OK (Envoy forwards the request)\n"},
		{"get /octo-org/app.git/info/refs?service=git-upload-pack", "-",
			"Basic eC1hY2Nlc3MtdG9rZW46Z2hwXzRycnhTTWxqTUVyaWg2QzZQejUwcG9qaWFpS1czaTIzTkNITw==",
			"200 OK (Envoy forwards the request)\n"},
		{"POST /octo-org/app/git-receive-pack", "-",
			"Basic eC1hY2Nlc3MtdG9rZW46Z2hwXzRycnhTTWxqTUVyaWg2QzZQejUwcG9qaWFpS1czaTIzTkNITw==",
			"403 Forbidden\n"},
		{"GET /repos/octo-org/app/contents/README.md", "-", "Bearer " + token,
			"200 OK (Envoy forwards the request)\n"},
	}
	for i, c := range cases {
		var out bytes.Buffer
		if err := show(o, c.request, c.tokens, strings.NewReader(token+" octo-org app\n"), &out); err != nil {
			t.Fatalf("%s: %v", c.request, err)
		}
		if out.String() != c.wantOut {
			t.Errorf("%s: printed %q, want %q", c.request, out.String(), c.wantOut)
		}
		rec.mu.Lock()
		got := rec.reqs[i].GetAttributes().GetRequest().GetHttp()
		rec.mu.Unlock()
		if auth, ok := got.GetHeaders()["authorization"]; auth != c.wantAuth || ok != (c.wantAuth != "") {
			t.Errorf("%s: authorization %q (sent: %v), want %q", c.request, auth, ok, c.wantAuth)
		}
		if m := strings.ToUpper(strings.Fields(c.request)[0]); got.GetMethod() != m || got.GetHeaders()[":method"] != m {
			t.Errorf("%s: method %q / %q", c.request, got.GetMethod(), got.GetHeaders()[":method"])
		}
	}
}

func TestShowPrintsADenialWhole(t *testing.T) {
	var out bytes.Buffer
	resp := &authv3.CheckResponse{
		Status: &status.Status{Code: 16},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "www-authenticate", Value: `Basic realm="opa-pat"`}},
				{Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json; charset=utf-8"}},
			},
			Body: `{"message":"Requires authentication"}`,
		}},
	}
	if err := printAnswer(&out, resp); err != nil {
		t.Fatal(err)
	}
	want := "401 Unauthorized\ncontent-type: application/json; charset=utf-8\nwww-authenticate: Basic realm=\"opa-pat\"\n{\"message\":\"Requires authentication\"}\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestShowRefusesARequestThatIsNotMethodAndPath(t *testing.T) {
	for _, req := range []string{"", "GET", "GET octo-org/app", "GET /a b"} {
		err := show(options{addr: "127.0.0.1:1", timeout: time.Second}, req, "", strings.NewReader(""), io.Discard)
		want := fmt.Sprintf(`-show: %q is not "METHOD /path"`, req)
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", req, err, want)
		}
	}
	err := show(options{addr: "127.0.0.1:1", timeout: time.Second}, "GET /", "-", strings.NewReader("# nothing\n"), io.Discard)
	if err == nil || err.Error() != "standard input: no tokens" {
		t.Errorf("empty standard input: %v", err)
	}
}
