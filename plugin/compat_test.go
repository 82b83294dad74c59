package plugin

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/logging/test"
	"github.com/open-policy-agent/opa/v1/plugins"
)

// futureStore makes the store at path look as a future opa-pat of schema
// version 5 would leave it: a column this one does not know, and the
// migration recorded with marker (0: none, as an opa-pat before markers
// records it).
func futureStore(t *testing.T, path string, marker int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var m any
	if marker > 0 {
		m = marker
	}
	for _, stmt := range []string{`ALTER TABLE tokens ADD COLUMN note TEXT`, `UPDATE tokens SET note = 'future'`} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at, compatible_from) VALUES (5, 0, $1)`, m); err != nil {
		t.Fatal(err)
	}
}

// A sidecar whose store a newer opa-pat migrated starts when the store's
// marker admits it, says so in its log and decides on the store's tokens;
// otherwise it fails to start and says which version the store needs.
func TestNewerStoreSchema(t *testing.T) {
	for _, tc := range []struct {
		note   string
		marker int
		warn   string
		error  string
	}{
		{note: "compatible", marker: 4, warn: `Token store %q: schema version 5 is newer than this opa-pat supports (4) and marked compatible ` +
			`with opa-pat from schema version 4: using it as version 4, without migrating it; upgrade opa-pat to use the rest.`},
		{note: "incompatible", marker: 5,
			error: `opening store %q: schema version 5 is newer than this opa-pat supports (4); it needs an opa-pat that supports schema version 5 or newer`},
		{note: "no marker", error: `opening store %q: schema version 5 is newer than this opa-pat supports (4)`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			path, classic := seed(t)
			futureStore(t, path, tc.marker)
			logger := test.New()
			m, p := newManagerWith(t, `{}`, logger, `{"store": {"path": "`+path+`"}}`)
			err := p.Start(t.Context())
			if tc.error != "" {
				if want := strings.ReplaceAll(tc.error, "%q", `"`+path+`"`); err == nil || err.Error() != want {
					t.Fatalf("Start = %v; want %s", err, want)
				}
				if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateErr {
					t.Fatalf("status = %+v; want %q", s, plugins.StateErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(t.Context())
			if got := status(m); got != plugins.StateOK {
				t.Fatalf("status = %q; want %q", got, plugins.StateOK)
			}
			var warned []string
			for _, e := range logger.Entries() {
				if e.Level == logging.Warn {
					warned = append(warned, e.Message)
				}
			}
			if want := strings.ReplaceAll(tc.warn, "%q", `"`+path+`"`); len(warned) != 1 || warned[0] != want {
				t.Fatalf("warnings = %q; want %q", warned, want)
			}
			if got := evalTerm(t, `[pat.token("`+classic+`").found, pat.token("`+classic+`").user]`); got == nil || !got.Equal(ast.MustParseTerm(`[true, "bob"]`)) {
				t.Fatalf("pat.token = %v; want found, bob's", got)
			}
		})
	}
}
