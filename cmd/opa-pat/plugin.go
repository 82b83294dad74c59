package main

import (
	_ "github.com/opa-pat/opa-pat/plugin/builtins" // registers the pat.* built-in functions
)

// registerPlugin registers the pat plugin with OPA's runtime. The plugin
// package replaces this body once it exists.
func registerPlugin() {}
