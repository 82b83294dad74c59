package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"
)

func init() {
	if run := subcommand(cmd.RootCommand, "run"); run != nil {
		defaultTrue(run, readSpeedFlag)
		defaultTrue(run, skipVersionCheckFlag)
		pre := run.PreRunE
		run.PreRunE = func(c *cobra.Command, args []string) error {
			applySidecarRuntime()
			if pre != nil {
				return pre(c, args)
			}
			return nil
		}
		// OPA's run prints the errors of building a runtime (a local bundle
		// it refuses, a configuration it cannot parse) on stdout, and with
		// --server returns those of starting one (a plugin that cannot start,
		// also one that discovery configures) without a word. In server mode
		// stdout goes to stderr, where the logs go, through the token filter
		// (redact.go), and an error OPA did not print is printed there, as
		// `opa-pat up` does: a sidecar never exits 1 in silence.
		runE := run.RunE
		run.RunE = func(c *cobra.Command, args []string) error {
			server := c.Flags().Lookup("server")
			if server == nil || server.Value.String() != "true" {
				return runE(c, args)
			}
			restore := stdoutToStderr()
			err := runE(c, args)
			if said := restore(); err != nil && !strings.Contains(said, "error: "+err.Error()) {
				fmt.Fprintln(os.Stderr, "error:", err)
			}
			return err
		}
	}
}

// stdoutToStderr sends what the process writes to os.Stdout to os.Stderr
// until restore, which puts os.Stdout back and returns the start of what
// was written (at most 64 KiB), for the caller to tell whether an error
// was printed. Without a pipe, os.Stdout is os.Stderr and nothing is kept.
func stdoutToStderr() (restore func() string) {
	stdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		os.Stdout = os.Stderr
		return func() string { os.Stdout = stdout; return "" }
	}
	os.Stdout = w
	said := make(chan string, 1)
	go func() {
		var kept bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				os.Stderr.Write(buf[:n])
				if room := 64<<10 - kept.Len(); room > 0 {
					kept.Write(buf[:min(n, room)])
				}
			}
			if err != nil {
				break
			}
		}
		r.Close()
		said <- kept.String()
	}()
	return func() string {
		os.Stdout = stdout
		w.Close()
		return <-said
	}
}

func subcommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// readSpeedFlag is OPA's flag that makes the in-memory store keep data as
// AST values. The policy reads data.pat.settings on every decision; without
// it, OPA's store hands it over as Go values and every decision converts it
// to AST values again (docs/PERFORMANCE.md, "Eighth session").
const readSpeedFlag = "optimize-store-for-read-speed"

// skipVersionCheckFlag is OPA's flag that keeps a server from asking
// api.github.com for OPA's latest release at start (sending its version,
// OS and architecture): a sidecar in front of credentials makes no call
// nobody asked for (opa-pat up does not either).
const skipVersionCheckFlag = "skip-version-check"

// defaultTrue turns one of OPA run's boolean flags on by default in
// `opa-pat run`; `--NAME=false` turns it off.
func defaultTrue(run *cobra.Command, name string) {
	if f := run.Flags().Lookup(name); f != nil {
		_ = f.Value.Set("true") // a bool flag: "true" always parses
		f.DefValue = "true"
	}
}

// sidecarProcs is the GOMAXPROCS a sidecar (opa-pat run, opa-pat up) runs
// with, given the environment's GOMAXPROCS and the Go runtime's own choice:
// one where Go would use two CPUs, unless the environment chose. On two
// CPUs the sidecar shares the machine with Envoy and the service behind
// it; with one P its goroutines stay on one thread, so answering a Check
// wakes no second thread on the other CPU and no idle mark worker of the
// collector takes that CPU from Envoy. Measured on a 2-vCPU VM
// (docs/PERFORMANCE.md, "Eighth session"): p99 at 2,000 uncached Checks a
// second 3.1-3.6 ms against 5.1-6.7 ms, and closed-loop throughput at one
// connection 1.3-1.8 times higher. Larger machines keep Go's choice.
func sidecarProcs(env string, goChoice int) int {
	if env == "" && goChoice == 2 {
		return 1
	}
	return goChoice
}

// sidecarGOGC is the collector's GOGC a sidecar runs with unless the
// environment sets GOGC: a collection when the heap has grown by twice the
// live heap, not once. A sidecar's live heap is mostly the policy and the
// index, which every collection marks on the one P, while its Checks wait;
// half as many collections halve that wait. Measured on a 2-vCPU VM with
// 100,000 tokens at 2,000 Checks a second (docs/PERFORMANCE.md,
// "Twenty-first session"): p99 1.5-1.8 ms against 1.7-2.6 ms with the
// default decision cache, for a peak RSS of 250 MB against 195 MB.
const sidecarGOGC = 200

// sidecarGC is the GOGC a sidecar sets, and whether it sets one: not when
// the environment chose (GOGC=100 for the smallest heap, GOGC=off with
// GOMEMLIMIT, ...).
func sidecarGC(env string) (percent int, set bool) {
	if env != "" {
		return 0, false
	}
	return sidecarGOGC, true
}

// applySidecarRuntime sets the processors and the collector of a sidecar
// (opa-pat run, opa-pat up) as sidecarProcs and sidecarGC say.
func applySidecarRuntime() {
	runtime.GOMAXPROCS(sidecarProcs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)))
	if percent, ok := sidecarGC(os.Getenv("GOGC")); ok {
		debug.SetGCPercent(percent)
	}
}
