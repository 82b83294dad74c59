package main

import (
	"github.com/open-policy-agent/opa/v1/runtime"

	"github.com/opa-pat/opa-pat/plugin"
	_ "github.com/opa-pat/opa-pat/plugin/builtins" // registers the pat.* built-in functions
)

// registerPlugin registers the pat plugin with OPA's runtime, so that
// `opa-pat run` (and `up`) start it when plugins.pat is configured.
func registerPlugin() {
	runtime.RegisterPlugin(plugin.Name, plugin.Factory{})
}
