package main

import (
	"testing"

	"github.com/open-policy-agent/opa/cmd"
)

// The flags' values are OPA's runtime parameters themselves (pflag binds
// the variables), so "true" here is what the runtime gets unless the command
// line says otherwise.
func TestRunFlagsOnByDefault(t *testing.T) {
	run, _, err := cmd.RootCommand.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{readSpeedFlag, skipVersionCheckFlag} {
		f := run.Flags().Lookup(name)
		if f == nil {
			t.Fatalf("OPA's run has no --%s", name)
		}
		if f.Value.String() != "true" || f.DefValue != "true" {
			t.Fatalf("--%s: value %q, default %q; want true, true", name, f.Value.String(), f.DefValue)
		}
		// The flag is OPA's root command's, shared by the whole process:
		// put it back for the other tests and for the next run (go test
		// -count=2).
		t.Cleanup(func() {
			if err := f.Value.Set("true"); err != nil {
				t.Error(err)
			}
			f.Changed = false
		})
		if err := run.Flags().Parse([]string{"--" + name + "=false"}); err != nil {
			t.Fatal(err)
		}
		if f.Value.String() != "false" {
			t.Fatalf("--%s=false left the value %q", name, f.Value.String())
		}
	}
}

func TestSidecarProcs(t *testing.T) {
	for _, tc := range []struct {
		env      string
		goChoice int
		want     int
	}{
		{"", 1, 1},
		{"", 2, 1}, // two CPUs: one P
		{"", 3, 3},
		{"", 16, 16},
		{"2", 2, 2}, // the environment chose
		{"4", 4, 4},
	} {
		if got := sidecarProcs(tc.env, tc.goChoice); got != tc.want {
			t.Errorf("sidecarProcs(%q, %d) = %d, want %d", tc.env, tc.goChoice, got, tc.want)
		}
	}
}

// A sidecar collects when its heap has grown by twice the live heap, unless
// the environment chose a GOGC of its own.
func TestSidecarGC(t *testing.T) {
	for _, tc := range []struct {
		env     string
		percent int
		set     bool
	}{
		{"", 200, true},
		{"100", 0, false},
		{"off", 0, false},
	} {
		if percent, set := sidecarGC(tc.env); percent != tc.percent || set != tc.set {
			t.Errorf("sidecarGC(%q) = %d, %v; want %d, %v", tc.env, percent, set, tc.percent, tc.set)
		}
	}
}

// The default actor is cli:$USER, as docs/cli.md says, whoever the process
// runs as.
func TestDefaultActorIsUSER(t *testing.T) {
	t.Setenv("USER", "zed")
	if got := defaultActor(); got != "cli:zed" {
		t.Fatalf("got %q, want cli:zed", got)
	}
}
