package store

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5/pgconn"
)

// privilegeError is an error of insufficient privilege (SQLSTATE 42501)
// explained: what the role needs, and the GRANT that gives it. Its message
// is whole; it wraps the server's error.
type privilegeError struct {
	msg string
	err error
}

func (e *privilegeError) Error() string { return e.msg }

func (e *privilegeError) Unwrap() error { return e.err }

// deniedObject is PostgreSQL's message of a missing privilege on a table
// or a sequence, in English (lc_messages); its groups are the kind and the
// name.
var deniedObject = regexp.MustCompile(`^permission denied for (table|sequence|relation) (\S+)$`)

// role is the PostgreSQL role of the store's sessions, for messages.
func (db *DB) role() string {
	if db.pg == nil {
		return ""
	}
	if db.pg.role != "" {
		return db.pg.role
	}
	return db.pg.config.User
}

// needPrivilege explains err when it is PostgreSQL's refusal of a
// statement that needed privilege (SELECT, "INSERT and UPDATE", ...) on
// table: it says which privilege on which object the role needs and the
// GRANT that gives it (docs/postgres.md, "Roles and privileges"). The
// object is the one the server names (a sequence, or another table of a
// statement that reads several), else table. Other errors, SQLite's, ones
// already explained, and nil pass as they are.
func (db *DB) needPrivilege(err error, privilege, table string) error {
	if err == nil || db.pg == nil || pgCode(err) != sqlstateInsufficientPrivilege || errors.As(err, new(*privilegeError)) {
		return err
	}
	kind, name := "table", table
	if m := deniedObject.FindStringSubmatch(pgMessage(err)); m != nil {
		name = m[2]
		if m[1] == "sequence" {
			kind, privilege = "sequence", "USAGE"
		}
	}
	object := kind + " " + name
	grant := fmt.Sprintf("GRANT %s ON %s TO %s", grantPrivilege(privilege), name, db.role())
	switch {
	case kind == "sequence":
		grant = fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s", name, db.role())
	case name == "":
		// The server's message in another language, and a statement
		// that reads several tables.
		schema := db.pg.schema
		if schema == "" {
			schema = "public"
		}
		object = "the store's tables"
		grant = fmt.Sprintf("GRANT %s ON ALL TABLES IN SCHEMA %s TO %s", grantPrivilege(privilege), schema, db.role())
	}
	return &privilegeError{
		msg: fmt.Sprintf("%v; the role %s needs %s on %s (%s; docs/postgres.md \"Roles and privileges\")", err, db.role(), privilege, object, grant),
		err: err,
	}
}

// pgMessage is the message of a PostgreSQL error in err's chain, "" when
// none.
func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return ""
}

// andList separates the last of a list of privileges.
var andList = regexp.MustCompile(`,? and `)

// grantPrivilege is privilege as a GRANT lists it: "INSERT and UPDATE"
// becomes "INSERT, UPDATE".
func grantPrivilege(privilege string) string {
	return andList.ReplaceAllString(privilege, ", ")
}
