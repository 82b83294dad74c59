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

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

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

// FixturesDay is the day the dates in fixtures.json are written for: the
// tokens' ages, lifetimes and expiries, and so the decisions that
// docs/config.md lists, are those of a store seeded that day.
var FixturesDay = time.Date(2026, time.November, 25, 0, 0, 0, 0, time.UTC)

// Shift is how far FixturesAt moves the fixtures' dates for a store seeded
// at now: the whole days from FixturesDay to now's day (UTC).
func Shift(now time.Time) time.Duration {
	day := 24 * time.Hour
	return now.UTC().Truncate(day).Sub(FixturesDay).Truncate(day)
}

// FixturesAt returns fixtures.json with every created_at and expires_at
// moved by Shift(now), so that a demo world seeded on any day is the one
// the documentation describes: a token that expires in a year still does,
// and none of the demo decisions changes as the calendar moves on.
func FixturesAt(now time.Time) ([]byte, error) {
	var world map[string]any
	dec := json.NewDecoder(bytes.NewReader(Fixtures))
	dec.UseNumber()
	if err := dec.Decode(&world); err != nil {
		return nil, fmt.Errorf("fixtures.json: %w", err)
	}
	shift := Shift(now)
	tokens, _ := world["tokens"].([]any)
	for i, t := range tokens {
		tok, ok := t.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("fixtures.json: tokens[%d] is not an object", i)
		}
		for _, key := range []string{"created_at", "expires_at"} {
			s, ok := tok[key].(string)
			if !ok {
				continue // absent or null: no date to move
			}
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("fixtures.json: tokens[%d].%s: %w", i, key, err)
			}
			tok[key] = at.Add(shift).UTC().Format(time.RFC3339)
		}
	}
	return json.Marshal(world)
}
