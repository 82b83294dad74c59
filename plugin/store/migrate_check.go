package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// A store written by an older opa-pat may hold what this one refuses on
// write: a token in a name or a reason, a login outside GitHub's names, a
// NUL in a text; and, across records, a request of a classic token or for
// an organization other than its token's resource owner, or two spellings
// of one login. MigrateStore copies rows as they are, so it checks each
// one with the write path's own checks (checkRow), then the rules across
// records with import's own checks (checkSource), and copies nothing when
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
		check: func(r copiedRow) error {
			return firstErr(errors.Join(CheckText("reason", r.text("reason")), CheckActor("actor", r.text("actor"))))
		},
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
		return sourceRefusal(rc.record(r), err)
	}
	return nil
}

// sourceRefusal is MigrateStore's refusal of a source's record: err names
// the field.
func sourceRefusal(record string, err error) error {
	return classify(ErrInvalid, fmt.Errorf("the source's %s holds a value this opa-pat refuses on write (correct it in the source; nothing was written): %w", record, err))
}

// checkSource applies to the source what import checks across a file's
// records, with import's own code: no login spelt in two cases
// (checkSpellings, as into an empty store: the target's records are gone
// when MigrateStore copies), then no request a token cannot have
// (grantFault). It runs after checkRow has passed every row, so that no
// refusal quotes a value checkRow would not show.
func checkSource(ctx context.Context, src *sql.Tx, dia dialect) error {
	if err := checkSpellings(ctx, nil, dia, sourceNames(ctx, src, dia), "earlier in the source"); err != nil {
		return err
	}
	return each(ctx, src, `SELECT r.id, r.org, t.id, t.kind, t.resource_owner FROM requests r JOIN tokens t ON t.id = r.token_id ORDER BY r.id`, func(rows *sql.Rows) error {
		var id, tokenID int64
		var t Token
		var org string
		if err := rows.Scan(&id, &org, &tokenID, &t.Kind, &t.ResourceOwner); err != nil {
			return fmt.Errorf("reading the source's requests: %w", err)
		}
		if field, err := grantFault(fmt.Sprintf("token %d", tokenID), t, org); err != nil {
			if field != "" {
				err = fmt.Errorf("%s: %w", strings.TrimPrefix(field, "."), err)
			}
			return sourceRefusal(fmt.Sprintf("request %d", id), err)
		}
		return nil
	})
}

// sourceNames is dumpNames for a source store: every name checkSpellings
// compares (logins, members and organizations, owners, tokens' users and
// resource owners, requests' organizations), table by table in the order
// MigrateStore copies them, rows in byte order (the same on both
// backends, so the spelling refused is the same), each with its record as
// checkRow names it and the field as the write path names it. dia is the
// source's dialect. A refusal fn returns is the
// source's (sourceRefusal).
func sourceNames(ctx context.Context, src *sql.Tx, dia dialect) func(nameFunc) error {
	type name struct{ column, field string }
	tables := []struct {
		table   string
		columns []copyColumn
		names   []name
	}{
		{"users", []copyColumn{{"login", colText}}, []name{{"login", "login"}}},
		{"memberships", []copyColumn{{"user_login", colText}, {"org", colText}}, []name{{"user_login", "user"}, {"org", "org"}}},
		{"repositories", []copyColumn{{"owner", colText}, {"name", colText}}, []name{{"owner", "owner"}}},
		{"tokens", []copyColumn{{"id", colInt}, {"user_login", colText}, {"resource_owner", colText}}, []name{{"user_login", "user"}, {"resource_owner", "resource_owner"}}},
		{"requests", []copyColumn{{"id", colInt}, {"org", colText}}, []name{{"org", "org"}}},
	}
	return func(fn nameFunc) error {
		for _, tb := range tables {
			cols := make(map[string]int, len(tb.columns))
			list, order := make([]string, len(tb.columns)), make([]string, len(tb.columns))
			for i, c := range tb.columns {
				cols[c.name], list[i], order[i] = i, c.name, c.name
				if c.kind == colText {
					order[i] += "{{BINARY}}"
				}
			}
			query := dia.ddl(`SELECT ` + strings.Join(list, ", ") + ` FROM ` + tb.table + ` ORDER BY ` + strings.Join(order, ", "))
			err := each(ctx, src, query, func(rows *sql.Rows) error {
				r := copiedRow{cols: cols, vals: make([]any, len(tb.columns))}
				dest := make([]any, len(tb.columns))
				for i, c := range tb.columns {
					if c.kind == colInt {
						dest[i] = new(int64)
					} else {
						dest[i] = new(string)
					}
				}
				if err := rows.Scan(dest...); err != nil {
					return fmt.Errorf("reading the source's %s: %w", tb.table, err)
				}
				for i, c := range tb.columns {
					if c.kind == colInt {
						r.vals[i] = *dest[i].(*int64)
					} else {
						r.vals[i] = *dest[i].(*string)
					}
				}
				for _, n := range tb.names {
					if err := fn(r.text(n.column), func() string { return n.field }); err != nil {
						return sourceRefusal(rowChecks[tb.table].record(r), err)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
}
