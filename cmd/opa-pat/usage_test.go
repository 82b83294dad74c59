package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
	if !ok || strings.Contains(msg, raw) || msg != `--token: (40 characters, not shown: it may be a raw token) is not a number` {
		t.Errorf("flagValueMessage: got %q, %v", msg, ok)
	}
	if msg, ok := flagValueMessage(fl.Parse([]string{"--token", "x9"})); !ok || msg != `--token: "x9" is not a number` {
		t.Errorf("flagValueMessage: got %q, %v", msg, ok)
	}
	fl.Bool("all", false, "")
	if _, ok := flagValueMessage(fl.Parse([]string{"--all=maybe"})); ok {
		t.Error("flagValueMessage: a short value of another type is pflag's to quote")
	}
}

// Whatever path an error took, its line shows no token's secret.
func TestErrorLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"open /tmp/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/w.json: no such file or directory",
			"error: open /tmp/ghp_[redacted]/w.json: no such file or directory"},
		{"two\nlines", "error: two; lines"},
		{"open /tmp/TestCLIFailureLeavesNoStore103427528/001/w.json: no such file or directory",
			"error: open /tmp/TestCLIFailureLeavesNoStore103427528/001/w.json: no such file or directory"},
		{`--kind: unknown kind "Classic", want classic or fine_grained`, `error: --kind: unknown kind "Classic", want classic or fine_grained`},
		// A token cut short after a known prefix: its 30 random characters are all of its secret.
		{`opening store "ghp_4rrxSMljMErih6C6Pz50pojiaiKW3i23NCH": no store there`, `error: opening store "ghp_[redacted]": no store there`},
		{`unknown flag: --github_pat_rve61z3unL4fNQWblQKjwb_4FZaPAStYw8wqZwQJ56Rsdg`, `error: unknown flag: --github_pat_[redacted]`},
		{`open /tmp/ghp_rotation_notes.json: no such file or directory`, `error: open /tmp/ghp_rotation_notes.json: no such file or directory`},
	} {
		if got := errorLine(tc.in); got != tc.want {
			t.Errorf("errorLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A raw token given as a subcommand or as an argument a command does not
// take is not printed back either.
func TestArgumentErrorsHideTokens(t *testing.T) {
	const raw = "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"
	err := noArgs([]string{"x", raw})
	if err == nil || strings.Contains(err.Error(), raw) || err.Error() != "unexpected arguments: x (40 characters, not shown: it looks like a personal access token)" {
		t.Errorf("noArgs: got %v", err)
	}
	cmd := newRequestsCmd()
	quiet(cmd, map[*cobra.Command]bool{})
	if err := cmd.Args(cmd, []string{raw}); err == nil || strings.Contains(err.Error(), raw) {
		t.Errorf("a group's unknown command: got %v", err)
	}
}

// An id flag refuses a number below 1 and a count flag one below 0, as
// they are read, naming the flag; what they take they keep, in decimal.
func TestMinIntFlags(t *testing.T) {
	var id int64
	var limit int
	fl := pflag.NewFlagSet("list", pflag.ContinueOnError)
	idFlag(fl, &id, "token", "token", "")
	countFlag(fl, &limit, "limit", 0, "0 (all events) or more", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token=-5"}, "--token: want a token id (1 or more), got -5"},
		{[]string{"--token", "-5"}, "--token: want a token id (1 or more), got -5"},
		{[]string{"--token", "0"}, "--token: want a token id (1 or more), got 0"},
		{[]string{"--limit=-1"}, "--limit: want 0 (all events) or more, got -1"},
		{[]string{"--token", "abc"}, `--token: "abc" is not a number`},
		{[]string{"--token", "0x10"}, `--token: "0x10" is not a number`},
		{[]string{"--limit", "1.5"}, `--limit: "1.5" is not a number`},
	} {
		msg, ok := flagValueMessage(fl.Parse(tc.args))
		if !ok || msg != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.args, msg, ok, tc.want)
		}
	}
	if err := fl.Parse([]string{"--token", "010", "--limit", "0"}); err != nil || id != 10 || limit != 0 {
		t.Fatalf("--token 010 --limit 0: %v, %d, %d", err, id, limit)
	}
	if err := fl.Parse([]string{"--limit", "7"}); err != nil || limit != 7 {
		t.Fatalf("--limit 7: %v, %d", err, limit)
	}
	// The help reads as for any number flag.
	if got := fl.Lookup("token").Value.Type() + " " + fl.Lookup("limit").Value.Type(); got != "int64 int" {
		t.Errorf("types %s", got)
	}
}
