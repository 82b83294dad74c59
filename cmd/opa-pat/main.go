// Command opa-pat is OPA with the pat plugin built in, plus opa-pat's own
// subcommands for tokens, approval requests, the store, keys and bundles.
package main

import (
	"os"

	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"
)

// subcommands holds opa-pat's own commands; each file of this package adds
// its command in an init function, so main stays a few lines.
var subcommands []func() *cobra.Command

func main() {
	code := func() int {
		// OPA_PAT_STDERR_REDACTION=off lets tests see the decision-log mask
		// at work on its own.
		if len(os.Args) > 1 && (os.Args[1] == "run" || os.Args[1] == "up") && os.Getenv("OPA_PAT_STDERR_REDACTION") != "off" {
			defer redactStderr()() // a sidecar's logs hold no token (redact.go)
		}
		return run(os.Args[1:])
	}()
	os.Exit(code)
}

func run(args []string) int {
	registerPlugin()
	root := cmd.RootCommand
	root.Use = "opa-pat"
	root.Short = "OPA with personal access token policies"
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	root.SetArgs(args)
	return exitCode(root.Execute())
}
