package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// OPA's version command prints OPA's version only; opa-pat adds its own
// build and the store schema version it supports, which a refusal to open a
// newer store names ("it needs an opa-pat that supports schema version N").
func init() {
	v := subcommand(cmd.RootCommand, "version")
	if v == nil {
		return
	}
	runE := v.RunE
	v.RunE = func(c *cobra.Command, args []string) error {
		if err := runE(c, args); err != nil {
			return err
		}
		fmt.Fprintln(os.Stdout, "opa-pat Build: "+buildVersion())
		fmt.Fprintf(os.Stdout, "opa-pat Store Schema: %d\n", store.SchemaVersion())
		return nil
	}
}

// buildVersion is the module's version and, for a build from a checkout,
// the commit (with "+dirty" when the tree had changes).
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	out := info.Main.Version
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision != "" {
		if len(revision) > 12 {
			revision = revision[:12]
		}
		out += " (commit " + revision
		if modified == "true" {
			out += "+dirty"
		}
		out += ")"
	}
	return out
}
