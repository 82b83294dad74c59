package main

import (
	"errors"

	"github.com/open-policy-agent/opa/cmd"
)

// exitCode maps a command's error to the process exit status. OPA's own
// commands report theirs through *cmd.ExitError; every other error is 1.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*cmd.ExitError](err); ok {
		return e.Exit
	}
	return 1
}
