// Command opa-pat is OPA with the pat plugin built in, plus opa-pat's own
// subcommands for tokens, approval requests, the store, keys and bundles.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/open-policy-agent/opa/cmd"
	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/token"
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
	// What cobra prints as an error (OPA's commands' too: "unknown command
	// "ghp_..." for "opa-pat"") shows no token.
	root.SetErr(redactingWriter{})
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
			msg = fmt.Sprintf("unknown command %s for %q", token.Quote(word), c.CommandPath())
		}
		fmt.Fprintln(os.Stderr, errorLine(fmt.Sprintf("%s (see %s --help)", msg, c.CommandPath())))
	}
	return exitCode(err)
}

// redactingWriter writes to the process's stderr of the moment (run and up
// replace it with their filter) through redactText, a write at a time:
// cobra writes an error as one line.
type redactingWriter struct{}

func (redactingWriter) Write(p []byte) (int, error) {
	if _, err := os.Stderr.WriteString(redactText(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
