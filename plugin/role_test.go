package plugin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/logging/test"
	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/opa-pat/opa-pat/plugin/lastused"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// TestSidecarSelectOnlyRole: a sidecar whose PostgreSQL role may only
// SELECT starts on a store whose id is recorded (it used to fail, writing
// the id again), answers from its index, and when recording tokens' last
// use is refused it warns once, naming the privilege and the GRANT, not on
// every flush; once the role may, it says so and the use is recorded.
func TestSidecarSelectOnlyRole(t *testing.T) {
	role := pgtest.Role(t)
	owner := pgtest.Database(t, "pat_selectonly_")
	classic := seedAt(t, owner)
	pgtest.Exec(t, owner, `GRANT USAGE ON SCHEMA public TO `+role, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+role)
	dsn := pgtest.As(t, owner, role)

	defer func(d time.Duration) { lastUsedInterval = d }(lastUsedInterval)
	lastUsedInterval = 50 * time.Millisecond
	section := `{"store": {"postgres": {"dsn": "` + dsn + `"}}}`
	logger := test.New()
	m, p := newManagerWith(t, `{"plugins": {"pat": `+section+`}}`, logger, section)
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start as a role that may only SELECT = %v", err)
	}
	defer p.Stop(t.Context())
	tok, ok := p.Index().Token(token.Hash(classic))
	if !ok {
		t.Fatal("the index does not hold the classic token")
	}

	lastUse := func(l logLine) bool { return strings.HasPrefix(l.message, "Recording token_last_used_at") }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; logged %q", what, logLines(logger))
			}
		}
	}
	lastUsedLines := func() []logLine {
		var out []logLine
		for _, l := range logLines(logger) {
			if lastUse(l) {
				out = append(out, l)
			}
		}
		return out
	}
	lastused.Mark(tok.ID) // as pat.token does on a decision
	waitFor("the warning", func() bool { return len(lastUsedLines()) > 0 })
	lastused.Mark(tok.ID)
	time.Sleep(500 * time.Millisecond) // ten flushes, each refused
	warning := logLine{logging.Warn, fmt.Sprintf(`Recording token_last_used_at: recording last use: ERROR: permission denied for table tokens (SQLSTATE 42501); `+
		`the role %s needs UPDATE (last_used_at) on table tokens (GRANT UPDATE (last_used_at) ON tokens TO %s; docs/postgres.md "Roles and privileges"); `+
		`token decisions are not affected, and the uses are recorded once it works (said once until then).`, role, role)}
	if got := lastUsedLines(); !slices.Equal(got, []logLine{warning}) {
		t.Fatalf("logged about the last use\n%q\nwant once\n%q", got, warning)
	}
	if s := m.PluginStatus()[Name]; s == nil || s.State != plugins.StateOK || s.Message != "" {
		t.Fatalf("status = %+v; want OK", s)
	}
	if err := p.Index().Current(time.Now()); err != nil {
		t.Fatalf("the index does not answer: %v", err)
	}

	pgtest.Exec(t, owner, `GRANT UPDATE (last_used_at) ON tokens TO `+role)
	waitFor("the line that it works again", func() bool { return len(lastUsedLines()) > 1 })
	if got := lastUsedLines(); !slices.Equal(got, []logLine{warning, {logging.Info, "Recording token_last_used_at works again."}}) {
		t.Fatalf("logged about the last use\n%q", got)
	}
	conn, err := pgx.Connect(t.Context(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var used *int64
	if err := conn.QueryRow(t.Context(), `SELECT last_used_at FROM tokens WHERE id = $1`, tok.ID).Scan(&used); err != nil || used == nil {
		t.Fatalf("last_used_at = %v, %v; want the use recorded", used, err)
	}
}
