package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The system.authz policy docs/config.md gives for OPA's API, shipped in the
// signed bundle as the docs say: decisions and /health answer without a
// token; reading the settings (GET or POST), the package, and writing
// policies need the operator's token.
func TestDocumentedAuthzPolicy(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```rego\n(package system\\.authz\n.*?)```").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/config.md has no system.authz policy")
	}
	const operator = "operator-token"
	sum := sha256.Sum256([]byte(operator))
	policy := strings.Replace(string(block[1]), "<the SHA-256 of the operator's token, in hex>", hex.EncodeToString(sum[:]), 1)

	dir, key, _ := signedExampleBundles(t)
	rego := filepath.Join(dir, "rego")
	if err := os.CopyFS(rego, os.DirFS(filepath.Join(repoRoot(), "rego"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rego, "system", "authz"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(rego, "system", "authz"), "authz.rego", policy)
	manifest := writeFile(t, dir, "manifest.json", `{"roots": ["pat", "system/log", "system/authz"], "rego_version": 1}`)
	out := filepath.Join(dir, "bundle.tar.gz")
	runSigning(t, dir, []string{"COSIGN_PASSWORD=pw"}, 0, "bundle", "build", "--settings", filepath.Join(repoRoot(), "examples", "settings.json"),
		"--key", key+".key", "--manifest", manifest, "--output", out, rego)

	s := startSignedSidecar(t, dir, "--authentication=token", "--authorization=basic", "--config-file", sidecarConfig(t, ""),
		"--verification-key", key+".pub", "--bundle", out)
	s.waitHealthy(t)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "/v1/data/pat/allow", "", http.StatusOK},
		{"POST", "/v1/data/pat/decision", "", http.StatusOK},
		{"GET", "/health?plugins", "", http.StatusOK},
		{"POST", "/v1/data/pat/settings", "", http.StatusUnauthorized},
		{"POST", "/v1/data/pat", "", http.StatusUnauthorized},
		{"GET", "/v1/data/pat/settings", "", http.StatusUnauthorized},
		{"PUT", "/v1/policies/evil", "", http.StatusUnauthorized},
		{"DELETE", "/v1/data/system/bundles/bundle.tar.gz", "", http.StatusUnauthorized},
		{"GET", "/v1/data/pat/settings", operator, http.StatusOK},
	} {
		req, err := http.NewRequest(tc.method, "http://"+s.addr+tc.path, strings.NewReader(`{"input": {}}`))
		if err != nil {
			t.Fatal(err)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s (token %q): %d, want %d", tc.method, tc.path, tc.token, resp.StatusCode, tc.want)
		}
	}
}
