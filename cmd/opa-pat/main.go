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
	os.Exit(run(os.Args[1:]))
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
