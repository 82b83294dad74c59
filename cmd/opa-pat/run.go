package main

import (
	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"
)

func init() {
	readSpeedByDefault(cmd.RootCommand)
}

// readSpeedFlag is OPA's flag that makes the in-memory store keep data as
// AST values.
const readSpeedFlag = "optimize-store-for-read-speed"

// readSpeedByDefault turns OPA's --optimize-store-for-read-speed on by
// default in `opa-pat run`. The policy reads data.pat.settings on every
// decision; without the flag, OPA's store hands it over as Go values and
// every decision converts it to AST values again (docs/PERFORMANCE.md,
// "Eighth session"). `--optimize-store-for-read-speed=false` turns it off.
func readSpeedByDefault(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "run" {
			continue
		}
		if f := c.Flags().Lookup(readSpeedFlag); f != nil {
			_ = f.Value.Set("true") // a bool flag: "true" always parses
			f.DefValue = "true"
		}
	}
}
