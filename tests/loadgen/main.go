// Command loadgen sends Envoy ext_authz Check requests to a gate on the
// loopback interface and reports throughput and latency. It builds requests
// with Envoy's own protos, as Envoy would send them (Git smart HTTP and REST
// calls with Basic or Bearer credentials).
//
// Closed loop (each worker sends its next request when the previous answer
// arrives):
//
//	go run ./tests/loadgen -addr 127.0.0.1:9191 -c 64 -duration 10s -tokens tokens.txt
//
// Fixed rate (requests are scheduled at -rate per second whatever the
// answers; latency counts from the scheduled time, so a stall is not hidden,
// and service time from the moment the request was sent, as tools that do
// not correct for coordinated omission report it):
//
//	go run ./tests/loadgen -addr 127.0.0.1:9191 -c 64 -rate 2000 -duration 30s -tokens tokens.txt
//
// Runs are bounded: -duration (at most 10m) and -n (requests). Only loopback
// addresses are accepted.
//
// The generator shares the machine with the gate, so it keeps its own cost
// out of the figures: requests are encoded before the run and answers
// decoded after their time is taken (wire.go), the schedule is kept by a
// timerfd rather than the runtime's millisecond-grained sleeps (pace_linux.go),
// and its collector waits for a 1 GiB heap.
//
// A world to measure with: a store of 100,000 generated tokens
// (plugin/store/storetest), its settings, and a file of sample tokens with
// the organization and repository each may reach:
//
//	go run ./tests/loadgen -populate /tmp/pat.db -n 100000 -tokens /tmp/tokens.txt -settings /tmp/settings.json
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opa-pat/opa-pat/plugin/store/storetest"
)

const maxDuration = 10 * time.Minute

type options struct {
	addr     string
	workers  int
	conns    int
	rate     float64
	duration time.Duration
	warmup   time.Duration
	n        int64
	tokens   string
	owner    string
	repos    string
	mix      string
	output   string
	timeout  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:9191", "the gate's address: loopback host:port, or unix:///path/to/socket")
	flag.IntVar(&o.workers, "c", 8, "concurrent workers")
	flag.IntVar(&o.conns, "conns", 0, "gRPC connections shared by the workers (default: min(c, 4))")
	flag.Float64Var(&o.rate, "rate", 0, "fixed request rate per second over all workers; 0 runs a closed loop")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure (at most 10m)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "closed-loop load before measuring, not counted")
	flag.Int64Var(&o.n, "n", 0, "stop after this many measured requests (0: no limit)")
	flag.StringVar(&o.tokens, "tokens", "", `file of raw tokens, one a line, each optionally followed by the owner and repository it addresses ("TOKEN [OWNER REPO]"; default: one made-up token)`)
	flag.StringVar(&o.owner, "owner", "octo-org", "the organization the requests address")
	flag.StringVar(&o.repos, "repos", "app", "comma-separated repositories the requests address")
	flag.StringVar(&o.mix, "mix", "git", "request mix: git (clone/fetch/push), rest (REST reads and writes), or all")
	flag.StringVar(&o.output, "output", "text", "text or json")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline of each Check")
	stubAddr := flag.String("stub", "", "serve a stub gate that answers every Check with OK on this loopback address, until interrupted (the load generator's own floor)")
	var shape stubShape
	flag.DurationVar(&shape.spin, "stub-spin", 0, "with -stub: CPU each Check spends before answering, as an evaluation would")
	flag.IntVar(&shape.garbage, "stub-garbage", 0, "with -stub: bytes of garbage each Check allocates, as an evaluation would")
	flag.IntVar(&shape.liveMB, "stub-live", 0, "with -stub: MB of long-lived objects, each holding a pointer, that every collection marks")
	showReq := flag.String("show", "", `send one Check for "METHOD /path" (with the first token of -tokens, "-" for standard input; none without) and print the whole answer`)
	populatePath := flag.String("populate", "", "create this store with -n generated tokens, write sample tokens to -tokens and settings to -settings, and exit")
	settingsOut := flag.String("settings", "settings.json", "with -populate: where to write the settings")
	samples := flag.Int("samples", storetest.SampleSize, "with -populate: how many tokens of each kind (classic, fine-grained) to write to -tokens")
	flag.Parse()
	if *stubAddr != "" {
		if err := serveStub(*stubAddr, shape); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *showReq != "" {
		if err := show(o, *showReq, o.tokens, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *populatePath != "" {
		if o.n <= 0 || o.tokens == "" {
			fmt.Fprintln(os.Stderr, "loadgen: -populate needs -n and -tokens")
			os.Exit(2)
		}
		if *samples < 1 {
			fmt.Fprintln(os.Stderr, "loadgen: -samples must be at least 1")
			os.Exit(2)
		}
		if err := populate(*populatePath, int(o.n), *samples, o.tokens, *settingsOut); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	// The generator's own collections would stall requests and count as
	// the gate's latency. A run is bounded (10 minutes at most), so the
	// collector waits for a 1 GiB heap unless GOGC or GOMEMLIMIT says
	// otherwise.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(1 << 30)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	tokens, err := readTokens(o.tokens)
	if err != nil {
		return err
	}
	reqs, err := buildRequests(o, tokens)
	if err != nil {
		return err
	}

	conns := make([]*grpc.ClientConn, o.conns)
	for i := range conns {
		c, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			// Fixed flow-control windows, as Envoy's HTTP/2 client has: with
			// grpc-go's dynamic ones the generator would follow the answers
			// it receives with bandwidth-probe PINGs, which the gate must
			// read and answer and Envoy never sends.
			grpc.WithInitialWindowSize(envoyWindow), grpc.WithInitialConnWindowSize(envoyWindow))
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}

	if o.warmup > 0 {
		closedLoop(o.workers, conns, reqs, time.Now().Add(o.warmup), 0, o.timeout, nil)
	}
	res := newResults(o.workers)
	start := time.Now()
	deadline := start.Add(o.duration)
	if o.rate > 0 {
		if err := fixedRate(o, conns, reqs, deadline, res); err != nil {
			return err
		}
	} else {
		closedLoop(o.workers, conns, reqs, deadline, o.n, o.timeout, res)
	}
	return res.report(out, o, time.Since(start))
}

func (o *options) validate() error {
	if o.workers < 1 {
		return errors.New("-c must be at least 1")
	}
	if o.conns == 0 {
		o.conns = min(o.workers, 4)
	}
	if o.conns < 1 {
		return errors.New("-conns must be at least 1")
	}
	if o.duration <= 0 || o.duration > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	if o.rate < 0 || o.n < 0 {
		return errors.New("-rate and -n must not be negative")
	}
	if o.output != "text" && o.output != "json" {
		return errors.New("-output is text or json")
	}
	if err := checkLoopback(o.addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	return nil
}

// checkLoopback refuses an address that is not on this machine. A Unix
// socket (unix:///path or unix:path, as the gate's addr) always is.
func checkLoopback(addr string) error {
	if _, ok := socketPath(addr); ok {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address; loadgen only loads this machine", host)
		}
	}
	return nil
}

// envoyWindow is Envoy's default initial HTTP/2 window, for a stream and
// for a connection (http2_protocol_options: 256 MiB).
const envoyWindow = 256 << 20

// socketPath is the file of a unix:///path or unix:path address.
func socketPath(addr string) (string, bool) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return "", false
	}
	if rest, abs := strings.CutPrefix(path, "//"); abs {
		path = rest
	}
	return path, true
}

// target is a token and, when the tokens file says, what it addresses.
type target struct{ token, owner, repo string }

func readTokens(path string) ([]target, error) {
	if path == "" {
		return []target{{token: "ghp_loadgenLOADGENloadgenLOADGENlo000000"}}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tokens, err := scanTokens(f)
	if err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return tokens, nil
}

// scanTokens reads a tokens file: "TOKEN [OWNER REPO]" a line, # comments.
func scanTokens(r io.Reader) ([]target, error) {
	var tokens []target
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		t := target{token: fields[0]}
		if len(fields) >= 3 {
			t.owner, t.repo = fields[1], fields[2]
		}
		tokens = append(tokens, t)
	}
	return tokens, sc.Err()
}

// buildRequests prepares up to 16384 distinct requests (tokens spread over
// them), already in their wire form, so that building and encoding them
// costs nothing during the run.
func buildRequests(o options, tokens []target) ([]frame, error) {
	repos := strings.Split(o.repos, ",")
	type shape struct{ method, path, auth string }
	var shapes []shape
	if o.mix == "git" || o.mix == "all" {
		shapes = append(shapes,
			shape{"GET", "/%s/%s.git/info/refs?service=git-upload-pack", "basic"},
			shape{"POST", "/%s/%s.git/git-upload-pack", "basic"},
			shape{"GET", "/%s/%s.git/info/refs?service=git-receive-pack", "basic"},
			shape{"POST", "/%s/%s.git/git-receive-pack", "basic"},
		)
	}
	if o.mix == "rest" || o.mix == "all" {
		shapes = append(shapes,
			shape{"GET", "/api/v3/repos/%s/%s/contents/README.md", "bearer"},
			shape{"GET", "/repos/%s/%s/issues", "token"},
			shape{"POST", "/repos/%s/%s/issues", "bearer"},
			shape{"GET", "/repos/%s/%s/pulls/1", "bearer"},
		)
	}
	if len(shapes) == 0 {
		shapes = append(shapes, shape{"GET", "/%s/%s.git/info/refs?service=git-upload-pack", "basic"})
	}
	n := min(16384, max(len(tokens)*len(shapes), len(shapes)*len(repos)))
	reqs := make([]frame, n)
	for i := range reqs {
		s := shapes[i%len(shapes)]
		tg := tokens[(i/len(shapes))%len(tokens)]
		token, owner, repo := tg.token, tg.owner, tg.repo
		if owner == "" {
			owner, repo = o.owner, repos[(i/len(shapes))%len(repos)]
		}
		path := fmt.Sprintf(s.path, owner, repo)
		var auth string
		switch s.auth {
		case "basic":
			auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
		case "token":
			auth = "token " + token
		default:
			auth = "Bearer " + token
		}
		b, err := proto.Marshal(checkRequest(s.method, path, auth, i))
		if err != nil {
			return nil, err
		}
		reqs[i] = b
	}
	return reqs, nil
}

func checkRequest(method, path, auth string, i int) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("127.0.0.1", uint32(40000+i%20000))},
		Destination: &authv3.AttributeContext_Peer{Address: addr("127.0.0.1", 8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:     fmt.Sprintf("loadgen-%d", i),
				Method: method,
				Headers: map[string]string{
					":authority":    "git.example.com",
					":method":       method,
					":path":         path,
					":scheme":       "https",
					"authorization": auth,
					"user-agent":    "git/2.45.0",
					"accept":        "*/*",
					"x-request-id":  fmt.Sprintf("loadgen-%d", i),
				},
				Path:     path,
				Host:     "git.example.com",
				Scheme:   "https",
				Protocol: "HTTP/1.1",
				Size:     -1,
			},
		},
	}}
}

// results collects per-worker latencies (no locking on the hot path).
type results struct {
	lat    [][]time.Duration // from the scheduled time (closed loop: from sending)
	svc    [][]time.Duration // from sending; fixed rate only
	codes  []map[string]int
	errs   atomic.Int64
	errMsg atomic.Value
}

func newResults(workers int) *results {
	r := &results{lat: make([][]time.Duration, workers), svc: make([][]time.Duration, workers), codes: make([]map[string]int, workers)}
	for i := range r.codes {
		r.codes[i] = map[string]int{}
	}
	return r
}

// record counts one answer, decoded here, after its time was taken, and
// reports whether it was one.
func (r *results) record(w int, d time.Duration, answer frame, err error) bool {
	if err == nil {
		err = r.count(w, answer)
	}
	if err != nil {
		r.errs.Add(1)
		r.errMsg.Store(err.Error())
		return false
	}
	r.lat[w] = append(r.lat[w], d)
	return true
}

func (r *results) count(w int, answer frame) error {
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(answer, &resp); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	status := "200"
	if dr := resp.GetDeniedResponse(); dr != nil {
		status = fmt.Sprint(int32(dr.GetStatus().GetCode()))
	}
	r.codes[w][status]++
	return nil
}

func closedLoop(workers int, conns []*grpc.ClientConn, reqs []frame, deadline time.Time, n int64, timeout time.Duration, res *results) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			conn := conns[w%len(conns)]
			var answer frame
			i := rand.IntN(len(reqs))
			for time.Now().Before(deadline) {
				if n > 0 && sent.Add(1) > n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				t0 := time.Now()
				err := check(ctx, conn, reqs[i%len(reqs)], &answer)
				d := time.Since(t0)
				cancel()
				if res != nil {
					res.record(w, d, answer, err)
				}
				i++
			}
		})
	}
	wg.Wait()
}

// fixedRate schedules requests at o.rate per second; workers take the next
// scheduled slot. A request that waits for a free worker counts its wait.
func fixedRate(o options, conns []*grpc.ClientConn, reqs []frame, deadline time.Time, res *results) error {
	interval := time.Duration(float64(time.Second) / o.rate)
	total := int64(time.Until(deadline) / interval)
	if o.n > 0 {
		total = min(total, o.n)
	}
	// The pacer never waits for a worker (up to 65,536 slots behind): a
	// slow answer delays the requests queued behind it, not the schedule.
	slots := make(chan time.Time, min(max(0, total), 1<<16)+1)
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Go(func() {
			conn := conns[w%len(conns)]
			var answer frame
			i := rand.IntN(len(reqs))
			for due := range slots {
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				sent := time.Now()
				err := check(ctx, conn, reqs[i%len(reqs)], &answer)
				end := time.Now()
				cancel()
				if res.record(w, end.Sub(due), answer, err) {
					res.svc[w] = append(res.svc[w], end.Sub(sent))
				}
				i++
			}
		})
	}
	err := pace(interval, total, slots)
	wg.Wait()
	return err
}

type summary struct {
	Mode        string             `json:"mode"`
	Workers     int                `json:"workers"`
	Conns       int                `json:"conns"`
	TargetRate  float64            `json:"target_rate,omitempty"`
	Requests    int                `json:"requests"`
	Errors      int64              `json:"errors"`
	LastError   string             `json:"last_error,omitempty"`
	Seconds     float64            `json:"seconds"`
	RPS         float64            `json:"rps"`
	Statuses    map[string]int     `json:"statuses"`
	LatencyJSON map[string]float64 `json:"latency_ms"`
	ServiceJSON map[string]float64 `json:"service_ms,omitempty"`
}

func (r *results) report(out io.Writer, o options, elapsed time.Duration) error {
	statuses := map[string]int{}
	for w := range r.codes {
		for k, v := range r.codes[w] {
			statuses[k] += v
		}
	}
	all := slices.Concat(r.lat...)
	s := summary{
		Mode: "closed-loop", Workers: o.workers, Conns: o.conns, Requests: len(all), Errors: r.errs.Load(),
		Seconds: elapsed.Seconds(), RPS: float64(len(all)) / elapsed.Seconds(), Statuses: statuses,
		LatencyJSON: percentiles(all),
	}
	if o.rate > 0 {
		s.Mode, s.TargetRate = "fixed-rate", o.rate
		s.ServiceJSON = percentiles(slices.Concat(r.svc...))
	}
	if v, ok := r.errMsg.Load().(string); ok {
		s.LastError = v
	}
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	l := s.LatencyJSON
	fmt.Fprintf(out, "%s, %d workers over %d connections", s.Mode, s.Workers, s.Conns)
	if s.TargetRate > 0 {
		fmt.Fprintf(out, ", target %.0f req/s", s.TargetRate)
	}
	fmt.Fprintf(out, "\nrequests %d in %.1fs: %.0f req/s, errors %d\n", s.Requests, s.Seconds, s.RPS, s.Errors)
	fmt.Fprintf(out, "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
	if l := s.ServiceJSON; l != nil {
		fmt.Fprintf(out, "service ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (from sending, not from the schedule)\n",
			l["p50"], l["p90"], l["p99"], l["p99.9"], l["max"])
	}
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprint(out, "statuses:")
	for _, k := range keys {
		fmt.Fprintf(out, " %s=%d", k, statuses[k])
	}
	fmt.Fprintln(out)
	if s.LastError != "" {
		fmt.Fprintln(out, "last error:", s.LastError)
	}
	return nil
}

// percentiles sorts d and returns its percentiles in milliseconds.
func percentiles(d []time.Duration) map[string]float64 {
	slices.Sort(d)
	pct := func(p float64) float64 {
		if len(d) == 0 {
			return 0
		}
		i := min(len(d)-1, int(p*float64(len(d))))
		return float64(d[i].Microseconds()) / 1000
	}
	return map[string]float64{"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "p99.9": pct(0.999), "max": pct(1)}
}
