package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// Usage errors of opa-pat's own commands: one line, as their other failures.

// isSubcommand reports whether word names one of c's subcommands.
func isSubcommand(c *cobra.Command, word string) bool {
	for _, sub := range c.Commands() {
		if sub.Name() == word || sub.HasAlias(word) {
			return true
		}
	}
	return false
}

// wordAfter is the first word of args after c's own path that is neither
// a flag nor a flag's value, or "" when there is none or a flag unknown to
// c leaves it unclear which words are values.
func wordAfter(c *cobra.Command, args []string) string {
	path := strings.Fields(c.CommandPath())[1:] // without the root's name
	rest := args
	for _, name := range path {
		if len(rest) == 0 || rest[0] != name {
			return ""
		}
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") {
			return a
		}
		if strings.Contains(a, "=") || a == "--" {
			continue
		}
		var f *pflag.Flag
		if strings.HasPrefix(a, "--") {
			f = c.Flags().Lookup(a[2:])
		} else if len(a) == 2 {
			f = c.Flags().ShorthandLookup(a[1:])
		}
		if f == nil {
			return ""
		}
		if f.NoOptDefVal == "" { // takes a value: the next word
			i++
		}
	}
	return ""
}

// quiet makes a command tree of opa-pat's leave errors to run, and records
// its commands in own.
func quiet(c *cobra.Command, own map[*cobra.Command]bool) {
	own[c] = true
	c.SilenceErrors, c.SilenceUsage = true, true
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		// cobra shows a group's help, exiting 0, for any words after it:
		// a mistyped subcommand is an error.
		c.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %s for %q", token.Quote(args[0]), c.CommandPath())
			}
			return nil
		}
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	for _, sub := range c.Commands() {
		quiet(sub, own)
	}
}

// A value given where an id or a number is expected may be a raw token
// pasted by mistake (opa-pat token revoke ghp_...): errors describe such a
// value rather than print it back, since they end up in terminals'
// scrollback and CI logs. An id is at most 19 digits; a token is 40
// characters or more with GitHub's prefixes.
const tokenLikeLen = 20

func mayBeToken(a string) bool { return len(a) >= tokenLikeLen }

// shownArg quotes a value for an error message, or describes it when it may
// be a raw token.
func shownArg(a string) string {
	if !mayBeToken(a) {
		return strconv.Quote(a)
	}
	return fmt.Sprintf("(%d characters, not shown: it may be a raw token)", len(a))
}

// flagValueMessage is the message of a flag given a value of the wrong
// type. pflag's quotes the value, twice, and for a number flag ends in
// strconv's words (strconv.ParseInt: parsing "abc": invalid syntax); a
// number flag's says what is wrong in the CLI's words, and a value that
// may be a raw token is described instead of quoted.
func flagValueMessage(err error) (string, bool) {
	e, ok := errors.AsType[*pflag.InvalidValueError](err)
	if !ok {
		return "", false
	}
	if low, ok := errors.AsType[*belowMinError](err); ok {
		return fmt.Sprintf("--%s: want %s, got %d", e.GetFlag().Name, low.want, low.got), true
	}
	switch typ := e.GetFlag().Value.Type(); typ {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		what := "a number"
		if strings.HasPrefix(typ, "uint") {
			what = "a number of at least 0"
		}
		return fmt.Sprintf("--%s: %s is not %s", e.GetFlag().Name, shownArg(e.GetValue()), what), true
	default:
		if !mayBeToken(e.GetValue()) {
			return "", false
		}
		return fmt.Sprintf("invalid argument %s for \"--%s\" flag: want %s", shownArg(e.GetValue()), e.GetFlag().Name, typ), true
	}
}

// errorLine is the line an error of opa-pat's own commands prints: one
// line, and, whatever path the error took, no token (redactText): the
// errors that may meet a token describe it, this catches any other. The
// sidecars' stderr filter would hide any run of 36 letters and digits, a
// temporary directory's name among them; this hides tokens only.
func errorLine(msg string) string {
	return redactText("error: " + strings.ReplaceAll(msg, "\n", "; "))
}

// redactText hides the tokens of a message (token.Redact), and what is left
// of a token cut short after a known prefix (redactCutShort, the sidecars'
// filter's rule and the decision-log mask's): a classic token without its
// last character is all of its secret.
func redactText(s string) string {
	return string(redactCutShort([]byte(token.Redact(s))))
}

// minInt is a number flag's value that refuses numbers below min when
// parsed: pflag's own take any, and a negative id or count (--token=-5)
// would filter on a value nothing has, listing nothing without a word.
// Its type is pflag's, so that the help and a value that is no number read
// as for any number flag.
type minInt[T int | int64] struct {
	p    *T
	min  T
	want string // what the flag takes, for the message: "a token id (1 or more)"
}

// belowMinError is what minInt.Set returns for a number below its minimum;
// flagValueMessage words it.
type belowMinError struct {
	want string
	got  int64
}

func (e *belowMinError) Error() string { return fmt.Sprintf("want %s, got %d", e.want, e.got) }

func (v *minInt[T]) Set(s string) error {
	var zero T
	bits := 64
	if _, ok := any(zero).(int); ok {
		bits = strconv.IntSize
	}
	// Decimal, as ids are shown and as positional ids are read (parseIDs):
	// pflag's base prefixes would read --token 010 as token 8.
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return err
	}
	if T(n) < v.min {
		return &belowMinError{want: v.want, got: n}
	}
	*v.p = T(n)
	return nil
}

func (v *minInt[T]) String() string { return strconv.FormatInt(int64(*v.p), 10) }

func (v *minInt[T]) Type() string {
	if _, ok := any(*v.p).(int); ok {
		return "int"
	}
	return "int64"
}

// idFlag defines a flag holding the id of a what (a token, a request): 1
// or more; 0, the default, stands for none given.
func idFlag(fl *pflag.FlagSet, p *int64, name, what, usage string) {
	fl.Var(&minInt[int64]{p: p, min: 1, want: "a " + what + " id (1 or more)"}, name, usage)
}

// countFlag defines a flag holding a count: 0 or more.
func countFlag(fl *pflag.FlagSet, p *int, name string, value int, want, usage string) {
	*p = value
	fl.Var(&minInt[int]{p: p, min: 0, want: want}, name, usage)
}
