// Package tests holds end-to-end tests: they build the real opa-pat binary
// once and drive it as users do (CLI, REST, ext_authz gRPC, signed bundles).
package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// binary builds ./cmd/opa-pat once per test run and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "opa-pat-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "opa-pat")
		statSources()
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/opa-pat")
		cmd.Dir = repoRoot()
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building opa-pat: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// repoRoot is the module root, one level above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// statSources looks at every file the binary is built from. go test caches
// a package's result by the files its test process opens or stats; the
// binary is built by a child process, which go test does not see, so
// without this an edit of cmd/ or plugin/ would leave a cached, stale pass
// of these tests.
func statSources() {
	root := repoRoot()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (name[0] == '.' || name == "tests" || name == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".rego", ".json", ".mod", ".sum", ".yaml":
			_, _ = os.Stat(p)
		}
		return nil
	})
}
