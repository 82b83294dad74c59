package store

// packedMigration adds tokens.packed.
const packedMigration = 2

// migration is one step of a schema: its DDL, and which older opa-pat may
// still use a store after it.
type migration struct {
	sql string
	// compatibleWith declares the oldest schema version whose opa-pat may
	// still read and write the store after this migration: for one that
	// only adds what the code of those versions never looks at (an index,
	// a column old writers may leave to its default or NULL, a table), the
	// version before it, or an older one whose code ignores it as well.
	// Zero, the default, declares that it breaks every older opa-pat (it
	// changes what a value means, adds a constraint an old writer would
	// break, drops or renames something): only an opa-pat that knows this
	// migration may use the store. A released migration's declaration is
	// never loosened: stores already carry the marker it gave.
	compatibleWith int
}

// compatibleFrom is the oldest schema version whose opa-pat may read and
// write a store at version v of ms: the highest compatibleWith (or
// version, for a migration that breaks older ones) up to v, since an
// opa-pat of version s uses the store only if every migration after s
// admits it.
func compatibleFrom(ms []migration, v int) int {
	from := 0
	for i, m := range ms[:v] {
		c := m.compatibleWith
		if c == 0 {
			c = i + 1
		}
		from = max(from, c)
	}
	return from
}

// migrations are applied in order, each once, recorded in
// schema_migrations with the compatibleFrom of the store they make. Never
// edit a released migration: add a new one.
//
// Times are Unix nanoseconds (BIGINT); NULL means "never" (no expiry, never
// used). Lists are comma-separated (names cannot hold commas) and permissions
// are "name=level" pairs joined by commas, so that loading a million tokens
// needs no JSON decoding.
var migrations = []migration{
	// 1: the initial schema.
	{sql: `
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE changes (
	seq    {{ID}},
	entity TEXT NOT NULL,
	key    TEXT NOT NULL
);
CREATE TABLE users (
	login      TEXT PRIMARY KEY,
	managed_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE memberships (
	user_login TEXT NOT NULL,
	org        TEXT NOT NULL,
	role       TEXT NOT NULL,
	PRIMARY KEY (user_login, org)
);
CREATE TABLE repositories (
	owner      TEXT NOT NULL,
	name       TEXT NOT NULL,
	visibility TEXT NOT NULL,
	PRIMARY KEY (owner, name)
);
CREATE TABLE tokens (
	id                   {{ID}},
	hash                 {{BLOB}} NOT NULL UNIQUE,
	name                 TEXT NOT NULL,
	kind                 TEXT NOT NULL,
	user_login           TEXT NOT NULL,
	scopes               TEXT NOT NULL DEFAULT '',
	resource_owner       TEXT NOT NULL DEFAULT '',
	repository_selection TEXT NOT NULL DEFAULT '',
	repositories         TEXT NOT NULL DEFAULT '',
	permissions          TEXT NOT NULL DEFAULT '',
	created_at           BIGINT NOT NULL,
	expires_at           BIGINT,
	revoked              BOOLEAN NOT NULL DEFAULT FALSE,
	last_used_at         BIGINT
);
CREATE INDEX tokens_user ON tokens (user_login, name);
CREATE TABLE requests (
	id            {{ID}},
	token_id      BIGINT NOT NULL REFERENCES tokens (id),
	org           TEXT NOT NULL,
	state         TEXT NOT NULL,
	justification TEXT NOT NULL DEFAULT '',
	review_reason TEXT NOT NULL DEFAULT '',
	reviewer      TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);
CREATE INDEX requests_token_org ON requests (token_id, org, id);
CREATE INDEX requests_org_state ON requests (org, state);
CREATE TABLE audit_events (
	id         {{ID}},
	at         BIGINT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	org        TEXT NOT NULL DEFAULT '',
	token_id   BIGINT,
	request_id BIGINT,
	reason     TEXT NOT NULL DEFAULT '',
	details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_org ON audit_events (org, id);
`},
	// 2: the immutable fields of each token packed in one column, so that a
	// sidecar loads a million tokens without SQLite concatenating them
	// (packed.go). Empty means "not packed": Load packs it itself.
	// Declared breaking: no opa-pat of version 1 was tried against it, and
	// none of them reads the marker anyway.
	{sql: `ALTER TABLE tokens ADD COLUMN packed TEXT NOT NULL DEFAULT '';`},
	// 3: the names Spelling compares without regard to case, indexed by
	// their lower-case form and then by the name itself, byte by byte
	// ({{BINARY}}), so that a name the store does not hold in lower case
	// costs a few index lookups instead of a scan of four tables: whether a
	// spelling is held, and the first spelling in byte order, each come
	// from the first matching index entry (read.go). Indexes only: an
	// opa-pat of version 2 reads and writes the same rows with them
	// (SQLite and PostgreSQL keep them up to date), so it may use the store.
	{compatibleWith: 2, sql: `
CREATE INDEX users_login_lower ON users (lower(login), login{{BINARY}});
CREATE INDEX memberships_org_lower ON memberships (lower(org), org{{BINARY}});
CREATE INDEX repositories_owner_lower ON repositories (lower(owner), owner{{BINARY}});
CREATE INDEX tokens_resource_owner_lower ON tokens (lower(resource_owner), resource_owner{{BINARY}});
`},
	// 4: changes.nonce, a random number the database gives every change it
	// logs (the column's default, {{CHANGES_NONCE}}: dialect.go), the
	// changes already logged included. A follower keeps the nonce of the
	// last change it applied and compares it with the change at that
	// number on every poll: a backup restored and written past that number
	// holds a change there, of the same record perhaps, but not the same
	// nonce (read.go, ChangesSince). The default fills the column for
	// every writer, those of version 2 and 3 as well, which name the
	// columns they insert and never read this one, so they may use the
	// store.
	{compatibleWith: 2, sql: `{{CHANGES_NONCE}}`},
}
