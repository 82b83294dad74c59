package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// A store written by an older opa-pat may hold what this one refuses on
// write: a token in a name or a reason, a login outside GitHub's names, a
// NUL in a text. MigrateStore copies rows as they are, so it checks each
// one with the write path's own checks (checkRow) and copies nothing when
// one fails: a migration must not carry into a new store, perhaps one
// more people read, what no write could put there.

// copiedRow is a row that copyRows read, its values by column name.
type copiedRow struct {
	cols map[string]int
	vals []any
}

func (r copiedRow) text(col string) string   { return r.vals[r.cols[col]].(string) }
func (r copiedRow) integer(col string) int64 { return r.vals[r.cols[col]].(int64) }
func (r copiedRow) nullInt(col string) sql.NullInt64 {
	return r.vals[r.cols[col]].(sql.NullInt64)
}
func (r copiedRow) boolean(col string) bool { return r.vals[r.cols[col]].(bool) }
func (r copiedRow) blob(col string) []byte  { return r.vals[r.cols[col]].([]byte) }

// rowCheck names and checks the rows of one table.
type rowCheck struct {
	// record names the row's record by its key, quoted as token.Quote
	// quotes (a key that looks like a token is described, not shown).
	record func(r copiedRow) string
	// check applies the checks of the write path (and of import) to the
	// record, if any beyond checkStored, which every text column gets.
	check func(r copiedRow) error
}

// rowChecks are the checks of every table in copyTables.
var rowChecks = map[string]rowCheck{
	"meta": {record: func(r copiedRow) string { return "meta key " + token.Quote(r.text("key")) }},
	"users": {
		record: func(r copiedRow) string { return "user " + token.Quote(r.text("login")) },
		check: func(r copiedRow) error {
			return validateUser(User{Login: r.text("login"), ManagedBy: r.text("managed_by")})
		},
	},
	"memberships": {
		record: func(r copiedRow) string {
			return "membership " + token.Quote(r.text("user_login")) + " in " + token.Quote(r.text("org"))
		},
		check: func(r copiedRow) error {
			return firstErr(validateMembership(Membership{User: r.text("user_login"), Org: r.text("org"), Role: r.text("role")}))
		},
	},
	"repositories": {
		record: func(r copiedRow) string { return "repository " + token.Quote(r.text("owner")+"/"+r.text("name")) },
		check: func(r copiedRow) error {
			return firstErr(validateRepository(Repository{Owner: r.text("owner"), Name: r.text("name"), Visibility: r.text("visibility")}))
		},
	},
	"tokens": {
		record: func(r copiedRow) string { return fmt.Sprintf("token %d", r.integer("id")) },
		check: func(r copiedRow) error {
			sc := tokenScanner{id: r.integer("id"), hash: r.blob("hash"), name: r.text("name"), kind: r.text("kind"), user: r.text("user_login"),
				scopes: r.text("scopes"), owner: r.text("resource_owner"), selection: r.text("repository_selection"), repos: r.text("repositories"),
				perms: r.text("permissions"), createdAt: r.integer("created_at"), expiresAt: r.nullInt("expires_at"), revoked: r.boolean("revoked"),
				lastUsedAt: r.nullInt("last_used_at")}
			t, err := sc.token()
			if err != nil {
				return err
			}
			return ValidateToken(t)
		},
	},
	"requests": {
		record: func(r copiedRow) string { return fmt.Sprintf("request %d", r.integer("id")) },
		check: func(r copiedRow) error {
			return firstErr(errors.Join(checkGitHubName("org", r.text("org")), checkEnum("state", r.text("state"), grantStates),
				CheckText("justification", r.text("justification")), CheckText("review_reason", r.text("review_reason")),
				CheckText("reviewer", r.text("reviewer"))))
		},
	},
	"audit_events": {
		record: func(r copiedRow) string { return fmt.Sprintf("audit event %d", r.integer("id")) },
		check:  func(r copiedRow) error { return CheckText("reason", r.text("reason")) },
	},
}

// checkRow refuses a row of t that holds what the write path refuses: the
// record's own checks first, then checkStored on every text column (a
// token's packed fields, an audit event's actor and details, a setting).
// The error names the record and the field, never the value.
func checkRow(t copyTable, r copiedRow) error {
	rc := rowChecks[t.name]
	var err error
	if rc.check != nil {
		err = rc.check(r)
	}
	for _, c := range t.columns {
		if err != nil {
			break
		}
		if c.kind == colText {
			err = checkStored(c.name, r.text(c.name))
		}
	}
	if err != nil {
		return classify(ErrInvalid, fmt.Errorf("the source's %s holds a value this opa-pat refuses on write (correct it in the source; nothing was written): %w", rc.record(r), err))
	}
	return nil
}
