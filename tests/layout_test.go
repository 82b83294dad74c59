package tests

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayout holds the repository to DESIGN.md's "Layout (the top level is
// fixed)": one module (a single go.mod, at the top), and at the top level only
// the paths the design lists, with go.sum, the README, .gitignore and CI beside
// them. It reads what git tracks, so build outputs and local stores (git-ignored)
// do not count; outside a git checkout it is skipped.
func TestLayout(t *testing.T) {
	files := trackedFiles(t)

	var mods []string
	for _, f := range files {
		if f == "go.mod" || strings.HasSuffix(f, "/go.mod") {
			mods = append(mods, f)
		}
	}
	if !slices.Equal(mods, []string{"go.mod"}) {
		t.Errorf("go.mod files = %q, want [\"go.mod\"]: DESIGN.md fixes one module", mods)
	}

	allowed := []string{
		// DESIGN.md's layout table
		".opa-manifest", "bundle", "cmd", "docs", "examples", "go.mod", "plugin", "rego", "tests",
		// beside it
		".ci", ".gitignore", "README.md", "go.sum",
	}
	top := map[string]bool{}
	for _, f := range files {
		top[strings.SplitN(f, "/", 2)[0]] = true
	}
	for name := range top {
		if !slices.Contains(allowed, name) {
			t.Errorf("top-level %q is not in DESIGN.md's layout (allowed: %s)", name, strings.Join(allowed, ", "))
		}
	}

	for _, want := range []string{
		".opa-manifest",
		"cmd/opa-pat/main.go",
		"rego/capabilities.json",
		"rego/pat/pat.rego",
		"docs/PERFORMANCE.md",
		"docs/DESIGN.md",
		"docs/SEMANTICS.md",
		// DESIGN.md: "testdata/token-vectors.json beside this file"
		"docs/testdata/token-vectors.json",
	} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing: DESIGN.md names it", want)
		}
	}
}

// trackedFiles lists the files git tracks, relative to the repository's top.
func trackedFiles(t *testing.T) []string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = strings.TrimSpace(string(top))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
