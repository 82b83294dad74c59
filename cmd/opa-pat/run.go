package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin"
)

func init() {
	if run := subcommand(cmd.RootCommand, "run"); run != nil {
		defaultTrue(run, readSpeedFlag)
		defaultTrue(run, skipVersionCheckFlag)
		pre := run.PreRunE
		run.PreRunE = func(c *cobra.Command, args []string) error {
			applySidecarProcs()
			if pre != nil {
				return pre(c, args)
			}
			return nil
		}
		// OPA's run --server returns a plugin's failure to start without a
		// word (it silences errors; without --server it prints it itself):
		// say it, as `opa-pat up` does.
		// OPA's run also prints a runtime it cannot build (a local bundle it
		// refuses, a configuration it cannot parse) on stdout. A server writes
		// nothing else there, so in server mode stdout is stderr: every error
		// goes where the logs go, through the token filter (redact.go).
		runE := run.RunE
		run.RunE = func(c *cobra.Command, args []string) error {
			server := c.Flags().Lookup("server")
			serverMode := server != nil && server.Value.String() == "true"
			if serverMode {
				stdout := os.Stdout
				os.Stdout = os.Stderr
				defer func() { os.Stdout = stdout }()
			}
			err := runE(c, args)
			if serverMode && plugin.IsStartFailure(err) {
				fmt.Fprintln(os.Stderr, "error:", err)
			}
			return err
		}
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

func applySidecarProcs() {
	runtime.GOMAXPROCS(sidecarProcs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)))
}
