package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

const fullSettings = `{
  "enterprises": {
    "acme": {
      "owners": ["alice"],
      "fine_grained_opt_in": true,
      "classic_access": "org_decides",
      "fine_grained_access": "org_decides",
      "fine_grained_approval": "org_decides",
      "classic_max_lifetime_days": null,
      "fine_grained_max_lifetime_days": 366,
      "exempt_administrators": false
    }
  },
  "organizations": {
    "octo-org": {
      "enterprise": "acme",
      "fine_grained_opt_in": false,
      "classic_access": "allow",
      "fine_grained_access": "allow",
      "fine_grained_approval": "require",
      "classic_max_lifetime_days": null,
      "fine_grained_max_lifetime_days": null
    }
  }
}`

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		note     string
		settings string
		err      string // exact message; empty: valid
		schemaOK bool   // whether JSON Schema alone accepts it (cross-references are ours)
	}{
		{note: "the design's example", settings: fullSettings},
		{note: "empty", settings: `{}`},
		{note: "only organizations", settings: `{"organizations": {"solo": {"classic_access": "restrict"}}}`},
		{note: "lifetime bounds", settings: `{"enterprises": {"e": {"classic_max_lifetime_days": 1, "fine_grained_max_lifetime_days": 366}}}`},
		{note: "integral number with a fraction", settings: `{"enterprises": {"e": {"classic_max_lifetime_days": 30.0}}}`},
		{note: "organization outside any enterprise", settings: `{"organizations": {"o": {"enterprise": null}}}`},
		{note: "exempt administrators outside any enterprise (rule 28)", settings: `{"organizations": {"solo": {"fine_grained_max_lifetime_days": 45, "exempt_administrators": true}}}`},
		{
			note:     "exempt administrators of an organization inside an enterprise",
			settings: `{"enterprises": {"acme": {}}, "organizations": {"octo-org": {"enterprise": "acme", "exempt_administrators": true}}}`,
			err:      `settings: organizations.octo-org.exempt_administrators: only an organization outside any enterprise sets it; octo-org belongs to acme, whose exempt_administrators applies`,
			schemaOK: true,
		},
		{
			note:     "a lower-cased token as an organization's name: not in a bundle",
			settings: `{"organizations": {"ghp_5elvhigd5tsbwuxy9wltdzq7cztow24selvl": {"classic_access": "allow"}}}`,
			err:      `settings: organizations: a key looks like a personal access token; settings are published in bundles: never write a token in them`,
			schemaOK: true,
		},
		{
			note:     "a token as an enterprise owner",
			settings: `{"enterprises": {"acme": {"owners": ["alice", "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"]}}}`,
			err:      `settings: enterprises.acme.owners[1]: looks like a personal access token; settings are published in bundles: never write a token in them`,
			schemaOK: true,
		},
		{
			// A token without its last character is all of its secret; the lower-case
			// name message quoted it twice.
			note:     "a token cut short as an enterprise owner",
			settings: `{"enterprises": {"acme": {"owners": ["ghp_5ELVHIGD5tsbwuxy9WltDZQ7cztoW24SELV"]}}}`,
			err:      `settings: enterprises.acme.owners[0]: looks like a personal access token; settings are published in bundles: never write a token in them`,
			schemaOK: true,
		},
		{
			note:     "a token cut short and lower-cased as an organization's name",
			settings: `{"organizations": {"ghp_5elvhigd5tsbwuxy9wltdzq7cztow24selv": {"classic_access": "maybe"}}}`,
			err:      `settings: organizations: a key looks like a personal access token; settings are published in bundles: never write a token in them`,
		},
		{
			note:     "unknown value",
			settings: `{"organizations": {"octo-org": {"classic_access": "maybe"}}}`,
			err:      `settings: organizations.octo-org.classic_access: "maybe" is not one of allow, restrict`,
		},
		{
			note:     "enterprise value an organization may not use",
			settings: `{"organizations": {"octo-org": {"fine_grained_approval": "org_decides"}}}`,
			err:      `settings: organizations.octo-org.fine_grained_approval: "org_decides" is not one of require, disable`,
		},
		{
			note:     "unknown enterprise value",
			settings: `{"enterprises": {"acme": {"fine_grained_access": "deny"}}}`,
			err:      `settings: enterprises.acme.fine_grained_access: "deny" is not one of org_decides, restrict, allow`,
		},
		{
			note:     "unknown field",
			settings: `{"organizations": {"octo-org": {"clasic_access": "allow"}}}`,
			err:      `settings: organizations.octo-org.clasic_access: unknown field (known: classic_access, classic_max_lifetime_days, enterprise, exempt_administrators, fine_grained_access, fine_grained_approval, fine_grained_max_lifetime_days, fine_grained_opt_in)`,
		},
		{
			note:     "unknown top-level field",
			settings: `{"orgs": {}}`,
			err:      `settings: orgs: unknown field (known: enterprises, organizations)`,
		},
		{
			note:     "an enterprise-only field on an organization",
			settings: `{"organizations": {"o": {"owners": ["alice"]}}}`,
			err:      `settings: organizations.o.owners: unknown field (known: classic_access, classic_max_lifetime_days, enterprise, exempt_administrators, fine_grained_access, fine_grained_approval, fine_grained_max_lifetime_days, fine_grained_opt_in)`,
		},
		{
			note:     "lifetime above 366",
			settings: `{"enterprises": {"acme": {"fine_grained_max_lifetime_days": 367}}}`,
			err:      `settings: enterprises.acme.fine_grained_max_lifetime_days: 367 is not between 1 and 366`,
		},
		{
			note:     "lifetime zero",
			settings: `{"organizations": {"o": {"classic_max_lifetime_days": 0}}}`,
			err:      `settings: organizations.o.classic_max_lifetime_days: 0 is not between 1 and 366`,
		},
		{
			note:     "lifetime not an integer",
			settings: `{"organizations": {"o": {"classic_max_lifetime_days": 30.5}}}`,
			err:      `settings: organizations.o.classic_max_lifetime_days: 30.5 is not an integer or null`,
		},
		{
			note:     "lifetime as a string",
			settings: `{"organizations": {"o": {"fine_grained_max_lifetime_days": "30"}}}`,
			err:      `settings: organizations.o.fine_grained_max_lifetime_days: "30" is not an integer or null`,
		},
		{
			note:     "boolean as a string",
			settings: `{"enterprises": {"acme": {"fine_grained_opt_in": "yes"}}}`,
			err:      `settings: enterprises.acme.fine_grained_opt_in: "yes" is not a boolean`,
		},
		{
			note:     "owners not an array",
			settings: `{"enterprises": {"acme": {"owners": "alice"}}}`,
			err:      `settings: enterprises.acme.owners: "alice" is not an array`,
		},
		{
			note:     "an owner not a string",
			settings: `{"enterprises": {"acme": {"owners": ["alice", 7]}}}`,
			err:      `settings: enterprises.acme.owners[1]: 7 is not a string`,
		},
		{
			note:     "organization not an object",
			settings: `{"organizations": {"o": []}}`,
			err:      `settings: organizations.o: [] is not an object`,
		},
		{
			note:     "top level not an object",
			settings: `[]`,
			err:      `settings: (top level): [] is not an object`,
		},
		{
			note:     "every problem at once, in path order",
			settings: `{"organizations": {"b": {"classic_access": "maybe"}, "a": {"fine_grained_max_lifetime_days": 400}}}`,
			err:      `settings: organizations.a.fine_grained_max_lifetime_days: 400 is not between 1 and 366; organizations.b.classic_access: "maybe" is not one of allow, restrict`,
		},
		{
			note:     "undefined enterprise",
			settings: `{"enterprises": {"acme": {}}, "organizations": {"octo-org": {"enterprise": "acne"}}}`,
			err:      `settings: organizations.octo-org.enterprise: "acne" is not an enterprise defined under enterprises (defined: acme)`,
			schemaOK: true,
		},
		{
			note:     "mixed-case names",
			settings: `{"enterprises": {"Acme": {"owners": ["alice", "Bob"]}}, "organizations": {"Octo-Org": {"enterprise": "Acme"}}}`,
			err:      `settings: enterprises.Acme: "Acme": names are compared in lower case; write "acme"; enterprises.Acme.owners[1]: "Bob": names are compared in lower case; write "bob"; organizations.Octo-Org: "Octo-Org": names are compared in lower case; write "octo-org"`,
			schemaOK: true,
		},
		{
			note:     "enterprise named without any enterprise",
			settings: `{"organizations": {"octo-org": {"enterprise": "acme"}}}`,
			err:      `settings: organizations.octo-org.enterprise: "acme" is not an enterprise defined under enterprises (defined: none)`,
			schemaOK: true,
		},
		{
			note:     "duplicate field",
			settings: `{"organizations": {"o": {"classic_access": "allow", "classic_access": "restrict"}}}`,
			err:      `settings: organizations.o.classic_access: duplicate field`,
			schemaOK: true,
		},
		{
			// Go's reader takes both keys for "evil\ufffd": one organization
			// silently, or a duplicate field that no line of the file shows.
			note:     "a lone surrogate in an organization's name",
			settings: `{"organizations": {"octo-org": {"classic_access": "allow"}, "evil\udc00": {"classic_access": "restrict"}}}`,
			err:      `settings: organizations: a key with a lone UTF-16 surrogate, \udc00, at line 1, column 66: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`,
			schemaOK: true,
		},
		{
			note:     "a lone surrogate in an owner's login",
			settings: `{"enterprises": {"acme": {"owners": ["alice", "bob\ud800"]}}}`,
			err:      `settings: enterprises.acme.owners[1]: a lone UTF-16 surrogate, \ud800, at line 1, column 51: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`,
			schemaOK: true,
		},
		{
			note:     "a byte that is not UTF-8",
			settings: "{\n  \"enterprises\": {\n    \"acme\": {\"owners\": [\"al\xe9\"]}\n  }\n}",
			err:      `settings: enterprises.acme.owners[0]: a byte that is not UTF-8, 0xe9, at line 3, column 28: it would be read as U+FFFD; write the file in UTF-8`,
			schemaOK: true,
		},
		{
			note:     "a surrogate pair and escapes are what they stand for",
			settings: `{"enterprises": {"acme": {"owners": ["\u0061lice"]}}, "organizations": {"octo-org": {"enterprise": "\u0061cme"}}, "x": "\ud83d\ude80"}`,
			err:      `settings: x: unknown field (known: enterprises, organizations)`,
		},
		{
			note:     "not JSON",
			settings: `{"organizations": `,
			err:      `settings: invalid JSON: EOF: the text ends at line 1, column 19, before its JSON value does`,
			schemaOK: true,
		},
		{
			note:     "trailing data",
			settings: `{} {}`,
			err:      `settings: invalid JSON: data after the top-level value`,
			schemaOK: true,
		},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got, err := ParseSettings([]byte(tc.settings))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && err == nil:
				t.Fatalf("accepted, want error %q", tc.err)
			case tc.err != "" && err.Error() != tc.err:
				t.Fatalf("error:\n got %q\nwant %q", err.Error(), tc.err)
			case tc.err != "" && !errors.Is(err, ErrInvalidSettings):
				t.Fatalf("error %v does not wrap ErrInvalidSettings", err)
			}
			if tc.err == "" && got == nil {
				t.Fatal("no settings returned")
			}
			// The published schema says the same thing to a standard JSON
			// Schema validator (OPA's json.match_schema, draft-07).
			if json.Valid([]byte(tc.settings)) && !bytes.Contains([]byte(tc.settings), []byte(`{} {}`)) {
				want := tc.err == "" || tc.schemaOK
				if ok := matchSchema(t, tc.settings); ok != want {
					t.Fatalf("json.match_schema says %v, want %v", ok, want)
				}
			}
		})
	}
}

func TestParseSettingsNormalizesIntegers(t *testing.T) {
	got, err := ParseSettings([]byte(`{"enterprises": {"e": {"classic_max_lifetime_days": 3.0e1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if want := `{"enterprises":{"e":{"classic_max_lifetime_days":30}}}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

// matchSchema asks OPA's json.match_schema whether the document matches.
func matchSchema(t *testing.T, doc string) bool {
	t.Helper()
	var input any
	if err := json.Unmarshal([]byte(doc), &input); err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(
		rego.Query(`[ok, _] := json.match_schema(input.doc, input.schema)`),
		rego.Input(map[string]any{"doc": input, "schema": string(SettingsSchema)}),
	).Eval(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("json.match_schema: %v %v", rs, err)
	}
	return rs[0].Bindings["ok"].(bool)
}

// The published schema in docs/ is the one the builder embeds.
func TestPublishedSchemaIsEmbedded(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	published, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "docs", "settings.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(published, SettingsSchema) {
		t.Fatal("docs/settings.schema.json differs from bundle/settings.schema.json: copy bundle/settings.schema.json to docs/")
	}
}

func TestSchemaParserRefusesUnknownKeywords(t *testing.T) {
	var s schema
	err := json.Unmarshal([]byte(`{"type": "string", "pattern": "^a"}`), &s)
	if err == nil || err.Error() != `unsupported schema keyword "pattern"` {
		t.Fatalf("got %v", err)
	}
}
