// Command opa-pat is OPA with the pat plugin built in, plus opa-pat's own
// subcommands for tokens, approval requests, the store, keys and bundles.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

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
	own := map[*cobra.Command]bool{}
	for _, sub := range subcommands {
		c := sub()
		quiet(c, own)
		root.AddCommand(c)
	}
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err != nil && own[c] && !errors.As(err, new(reported)) {
		// A bad flag or an unknown subcommand of opa-pat's own commands:
		// one line, as their other failures (cobra would print the usage).
		// A group (store, token...) reached with a flag was reached because
		// the word after it is no subcommand: that is the mistake.
		msg := err.Error()
		if m, ok := flagValueMessage(err); ok {
			msg = m
		}
		if word := wordAfter(c, args); c.HasSubCommands() && word != "" && !isSubcommand(c, word) {
			msg = fmt.Sprintf("unknown command %q for %q", word, c.CommandPath())
		}
		fmt.Fprintf(os.Stderr, "error: %s (see %s --help)\n", strings.ReplaceAll(msg, "\n", "; "), c.CommandPath())
	}
	return exitCode(err)
}
