// Package examples holds a ready configuration, settings and a small demo
// world for opa-pat, embedded so that `opa-pat up` starts without any file:
//
//   - config.yaml: an OPA configuration with the pat plugin (store, ext_authz,
//     admin API), for `opa-pat run --server --config-file examples/config.yaml`;
//   - settings.json: data.pat.settings, the enterprise and organization
//     policies (DESIGN.md "Settings");
//   - fixtures.json: the world `up` imports into a new store: the acme
//     enterprise (owner alice) with the octo-org and acme-labs
//     organizations, indie-org outside any enterprise, members, an owner, an
//     outside collaborator (carol), an enterprise managed user (dave_acme),
//     public, internal and private repositories, and classic and
//     fine-grained tokens (live, expired, revoked, over the lifetime limit)
//     with grants in every state.
//
// The raw tokens in fixtures.json are demo tokens, published here on
// purpose: never import them into a store that guards anything real.
// docs/config.md lists them with the decision each one gets.
package examples

import _ "embed"

// Config is config.yaml.
//
//go:embed config.yaml
var Config []byte

// Settings is settings.json.
//
//go:embed settings.json
var Settings []byte

// Fixtures is fixtures.json, in the `opa-pat store import` format.
//
//go:embed fixtures.json
var Fixtures []byte
