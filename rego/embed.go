// Package rego embeds opa-pat's policy so the binary can evaluate it without a
// bundle: the `up` command's default policy, and the creation rules that the
// CLI applies (SEMANTICS.md rules 21 and 29). Tests (*_test.rego) are left out.
package rego

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed pat system
var files embed.FS

// Modules returns the policy's Rego modules by path (e.g. "pat/pat.rego",
// "system/log/log.rego", the decision-log mask),
// tests excluded.
func Modules() (map[string]string, error) { return modules(false) }

// ModulesWithTests returns Modules and the Rego tests (*_test.rego), for
// running the tests under another evaluator (plugin/irvm).
func ModulesWithTests() (map[string]string, error) { return modules(true) }

func modules(tests bool) (map[string]string, error) {
	mods := map[string]string{}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || (!tests && strings.HasSuffix(path, "_test.rego")) {
			return err
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		mods[path] = string(b)
		return nil
	})
	return mods, err
}
