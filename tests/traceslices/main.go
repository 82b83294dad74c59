// Command traceslices reads a Go execution trace (/debug/pprof/trace) and
// prints what held a P for long: the longest running slices of goroutines,
// with the stack each ended on, the collector's mark phases, and each
// goroutine's running time in all. docs/PERFORMANCE.md ("Fifteenth session")
// reads the sidecar's tail with it:
//
//	curl -s 'localhost:8181/debug/pprof/trace?seconds=3' > trace.out
//	go run ./tests/traceslices -top 25 trace.out
//
// It lives in opa-pat's one module (DESIGN.md: one go.mod, a fixed top level),
// beside tests/loadgen, the other measuring tool. golang.org/x/exp, which it
// reads traces with, is a direct requirement of that module for this command
// only: nothing the opa-pat binary builds imports it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

type slice struct {
	g     trace.GoID
	start trace.Time
	dur   trace.Time
	end   string
}

func main() {
	top := flag.Int("top", 25, "how many of the longest slices and busiest goroutines to print")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: traceslices [-top N] TRACE")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *top); err != nil {
		fmt.Fprintln(os.Stderr, "traceslices:", err)
		os.Exit(1)
	}
}

func run(path string, top int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	var (
		first, last trace.Time
		slices      []slice
		marks       []string
		running     = map[trace.GoID]trace.Time{}
		total       = map[trace.GoID]trace.Time{}
		ended       = map[trace.GoID]string{}
		began       = map[string]trace.Time{}
	)
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		switch ev.Kind() {
		case trace.EventRangeBegin:
			began[ev.Range().Name] = ev.Time()
		case trace.EventRangeEnd:
			name := ev.Range().Name
			if strings.HasPrefix(name, "GC concurrent mark") {
				marks = append(marks, fmt.Sprintf("%s at %.1f ms: %.2f ms", name, ms(began[name]-first), ms(ev.Time()-began[name])))
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			g := st.Resource.Goroutine()
			from, to := st.Goroutine()
			if to == trace.GoRunning {
				running[g] = ev.Time()
			}
			if from == trace.GoRunning {
				if t0, ok := running[g]; ok {
					end := frames(st.Stack) + " (" + st.Reason + ")"
					slices = append(slices, slice{g: g, start: t0, dur: ev.Time() - t0, end: end})
					total[g] += ev.Time() - t0
					ended[g] = end
					delete(running, g)
				}
			}
		}
	}
	fmt.Printf("trace of %.1f ms, %d running slices\n\nlongest slices:\n", ms(last-first), len(slices))
	sort.Slice(slices, func(i, j int) bool { return slices[i].dur > slices[j].dur })
	for _, s := range slices[:min(top, len(slices))] {
		fmt.Printf("  %7.3f ms at %8.1f ms  g%-6d ended in %s\n", ms(s.dur), ms(s.start-first), s.g, s.end)
	}
	fmt.Println("\ncollector mark phases:")
	for _, m := range marks {
		fmt.Println("  " + m)
	}
	type busy struct {
		g trace.GoID
		t trace.Time
	}
	var goroutines []busy
	for g, t := range total {
		goroutines = append(goroutines, busy{g, t})
	}
	sort.Slice(goroutines, func(i, j int) bool { return goroutines[i].t > goroutines[j].t })
	fmt.Println("\nbusiest goroutines (running time in all, and the stack of their last slice's end):")
	for _, b := range goroutines[:min(top, len(goroutines))] {
		fmt.Printf("  %8.2f ms  g%-6d %s\n", ms(b.t), b.g, ended[b.g])
	}
	return nil
}

func ms(t trace.Time) float64 { return float64(t) / 1e6 }

// frames is a stack's innermost five functions.
func frames(s trace.Stack) string {
	var out []string
	for f := range s.Frames() {
		out = append(out, f.Func)
		if len(out) == 5 {
			break
		}
	}
	return strings.Join(out, " < ")
}
