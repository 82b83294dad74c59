package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// A raw token given where an id is expected is not printed back.
func TestIDErrorsHideTokens(t *testing.T) {
	const raw = "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"
	_, err := parseIDs("token", []string{"3", raw})
	if err == nil || strings.Contains(err.Error(), raw) || !strings.Contains(err.Error(), "token id (40 characters, not shown: it may be a raw token)") {
		t.Errorf("parseIDs: got %v", err)
	}
	_, err = parseIDs("request", []string{"x9"})
	if err == nil || err.Error() != `request id "x9": not a positive integer` {
		t.Errorf("parseIDs: got %v", err)
	}

	fl := pflag.NewFlagSet("list", pflag.ContinueOnError)
	fl.Int64("token", 0, "")
	err = fl.Parse([]string{"--token", raw})
	msg, ok := flagValueMessage(err)
	if !ok || strings.Contains(msg, raw) || msg != `invalid argument (40 characters, not shown: it may be a raw token) for "--token" flag: want int64` {
		t.Errorf("flagValueMessage: got %q, %v", msg, ok)
	}
	if _, ok := flagValueMessage(fl.Parse([]string{"--token", "x9"})); ok {
		t.Error("flagValueMessage: a short value is pflag's to quote")
	}
}
