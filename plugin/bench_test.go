package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/plugin/builtins"
	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/storetest"
	patrego "github.com/opa-pat/opa-pat/rego"
)

// Benchmarks of the sidecar's decision path and start-up with generated
// stores (storetest.Populate). docs/PERFORMANCE.md holds the figures.
//
//	go test ./plugin -run '^$' -bench . -benchtime 20000x -timeout 30m
//
// OPA_PAT_BENCH_SIZES overrides the store sizes, e.g. "1000,100000";
// OPA_PAT_BENCH_DIR keeps the generated stores for later runs.

func benchSizes(b *testing.B) []int {
	sizes := []int{1_000, 100_000, 1_000_000}
	if s := os.Getenv("OPA_PAT_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range splitComma(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("OPA_PAT_BENCH_SIZES: %q is not a number", f)
			}
			sizes = append(sizes, n)
		}
	}
	return sizes
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// populated is a generated store file and what Populate returned.
type populated struct {
	path  string
	world *storetest.World
}

var populatedCache = map[int]populated{}

// populate generates a store of n tokens once per test binary run. With
// OPA_PAT_BENCH_DIR set, the store and its known tokens are kept there and
// reused by later runs (a 1M-token store takes a minute or more to
// generate).
func populate(b *testing.B, n int) populated {
	b.Helper()
	if p, ok := populatedCache[n]; ok {
		return p
	}
	dir := os.Getenv("OPA_PAT_BENCH_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "opa-pat-bench-"); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("pat-%d.db", n))
	worldPath := path + ".world.json"
	if raw, err := os.ReadFile(worldPath); err == nil {
		var w storetest.World
		if err := json.Unmarshal(raw, &w); err != nil {
			b.Fatalf("%s: %v", worldPath, err)
		}
		p := populated{path: path, world: &w}
		populatedCache[n] = p
		return p
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	db, err := store.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	w, err := storetest.Populate(context.Background(), db, n, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d tokens in %v", n, time.Since(start).Round(time.Millisecond))
	raw, err := json.Marshal(w)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(worldPath, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	p := populated{path: path, world: w}
	populatedCache[n] = p
	return p
}

// benchSettings puts every generated organization in the generated
// enterprise, with approval required (the defaults otherwise).
func benchSettings(orgs int) map[string]any {
	o := make(map[string]any, orgs)
	for i := range orgs {
		o[storetest.OrgName(i)] = map[string]any{"enterprise": storetest.Enterprise}
	}
	return map[string]any{
		"enterprises":   map[string]any{storetest.Enterprise: map[string]any{"owners": []any{"owner"}}},
		"organizations": o,
	}
}

// startPlugin starts the pat plugin on a store with a real manager.
func startPlugin(b testing.TB, path string, settings map[string]any) (*plugins.Manager, *Plugin) {
	b.Helper()
	// As `opa-pat up` and `opa run --optimize-store-for-read-speed` do, the
	// store keeps ast values, so that a query does not convert the settings.
	data := inmem.NewFromObjectWithOpts(map[string]any{"pat": map[string]any{"settings": settings}},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	m, err := plugins.New([]byte(`{}`), "bench", data, plugins.Logger(logging.NewNoOpLogger()))
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`{"store": {"path": "` + path + `"}}`))
	if err != nil {
		b.Fatal(err)
	}
	p := Factory{}.New(m, cfg).(*Plugin)
	m.Register(Name, p)
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(context.Background()) })
	return m, p
}

// prepareDecision prepares data.pat.decision on the embedded policy, as a
// sidecar's REST handler does once per policy.
func prepareDecision(b *testing.B, m *plugins.Manager, evaluator string) rego.PreparedEvalQuery {
	b.Helper()
	mods, err := patrego.Modules()
	if err != nil {
		b.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("data.pat.decision"), rego.Store(m.Store)}
	for path, src := range mods {
		opts = append(opts, rego.Module(path, src))
	}
	target := "rego" // topdown, also while the plugin makes irvm the default
	if evaluator == "irvm" {
		target = irvm.Name
	}
	opts = append(opts, rego.Target(target))
	pq, err := rego.New(opts...).PrepareForEval(irvm.WithStore(context.Background(), m.Store))
	if err != nil {
		b.Fatal(err)
	}
	return pq
}

// benchInput is one request: a token reading contents of a private
// repository it may reach.
type benchInput struct {
	input ast.Value
	allow bool
}

func benchInputs(b *testing.B, w *storetest.World) []benchInput {
	b.Helper()
	var out []benchInput
	add := func(s storetest.Sample) {
		v, err := ast.InterfaceToValue(map[string]any{
			"credential": map[string]any{"type": "pat", "token": s.Raw},
			"resource":   map[string]any{"owner": s.Org, "repository": s.Repo},
			"action":     "read",
			"permission": "contents",
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchInput{input: v, allow: s.Kind == store.KindClassic || s.Grant == store.GrantApproved})
	}
	for i := range max(len(w.Classic), len(w.FineGrained)) {
		if i < len(w.Classic) {
			add(w.Classic[i])
		}
		if i < len(w.FineGrained) {
			add(w.FineGrained[i])
		}
	}
	return out
}

// BenchmarkDecision measures data.pat.decision through a prepared query on
// the real policy, cycling through up to 2,000 known tokens spread over the
// store (half classic, half fine-grained; fine-grained grants 8 in 10
// approved). It reports the median and the 99th percentile besides the
// mean.
func BenchmarkDecision(b *testing.B) {
	for _, n := range benchSizes(b) {
		for _, evaluator := range []string{"topdown", "irvm"} {
			b.Run(fmt.Sprintf("tokens=%d/eval=%s", n, evaluator), func(b *testing.B) {
				p := populate(b, n)
				m, _ := startPlugin(b, p.path, benchSettings(p.world.Orgs))
				pq := prepareDecision(b, m, evaluator)
				inputs := benchInputs(b, p.world)
				ctx := context.Background()

				// Every decision is checked once before timing.
				for _, in := range inputs {
					rs, err := pq.Eval(ctx, rego.EvalParsedInput(in.input))
					if err != nil || len(rs) != 1 {
						b.Fatalf("eval: %v (%d results)", err, len(rs))
					}
					d := rs[0].Expressions[0].Value.(map[string]any)
					if d["allow"] != in.allow {
						b.Fatalf("decision %v; want allow %v", d, in.allow)
					}
				}

				durations := make([]time.Duration, 0, 1<<16)
				i := 0
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for b.Loop() {
					in := inputs[i%len(inputs)]
					i++
					start := time.Now()
					rs, err := pq.Eval(ctx, rego.EvalParsedInput(in.input))
					d := time.Since(start)
					if err != nil || len(rs) != 1 {
						b.Fatal(err)
					}
					if len(durations) < cap(durations) {
						durations = append(durations, d)
					}
				}
				b.StopTimer()
				// CPU time of the process per decision (GC included): other
				// processes on the machine inflate wall-clock figures, not this.
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				slices.Sort(durations)
				if len(durations) > 0 {
					b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
					b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
				}
			})
		}
	}
}

// BenchmarkStartup measures a sidecar's start: from Start (open the store,
// load every record into the index) until the plugin reports OK; and the
// index's heap per token, from runtime.MemStats around an index load.
func BenchmarkStartup(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			p := populate(b, n)
			var total, cpu time.Duration
			for b.Loop() {
				m, err := plugins.New([]byte(`{}`), "bench", inmem.New(), plugins.Logger(logging.NewNoOpLogger()))
				if err != nil {
					b.Fatal(err)
				}
				cfg, _ := ParseConfig([]byte(`{"store": {"path": "` + p.path + `"}}`))
				pl := Factory{}.New(m, cfg).(*Plugin)
				start, cpu0 := time.Now(), cpuTime()
				if err := pl.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateOK {
					b.Fatalf("status %+v", s)
				}
				total += time.Since(start)
				cpu += cpuTime() - cpu0
				pl.Stop(context.Background())
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-ready")
			// CPU the process spent starting (both load goroutines and GC):
			// what the start costs on an otherwise idle machine, roughly.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s-to-ready")

			// Heap of the index alone: the store's own caches are not counted.
			db, err := store.Open(context.Background(), p.path)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			x := index.New()
			if err := x.Load(context.Background(), db); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if c := x.Counts(); c.Tokens != n {
				b.Fatalf("index holds %d tokens; want %d", c.Tokens, n)
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "index-B/token")
			runtime.KeepAlive(x)
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTokenBuiltin measures pat.token alone on a found token: format
// check, SHA-256, index lookup and the answer's ast object.
func BenchmarkTokenBuiltin(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			p := populate(b, n)
			startPlugin(b, p.path, map[string]any{})
			var raws []*ast.Term
			for _, s := range append(slices.Clone(p.world.Classic), p.world.FineGrained...) {
				raws = append(raws, ast.StringTerm(s.Raw))
			}
			var bctx rego.BuiltinContext
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				t, err := builtins.Token(bctx, raws[i%len(raws)])
				i++
				if err != nil || t == nil {
					b.Fatal(err)
				}
			}
		})
	}
}
