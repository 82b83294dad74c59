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
