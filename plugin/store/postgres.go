package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL connection limits, per process (one sidecar or one CLI run).
// A sidecar holds at most PostgresMaxReadConns + PostgresMaxWriteConns + 1
// (the listener) connections and usually 2 or 3, so a fleet of 30 sidecars
// fits in PostgreSQL's default max_connections of 100 even under load.
const (
	// PostgresMaxReadConns bounds the read pool (snapshot load, change-log
	// catch-up, point reads, CLI listings).
	PostgresMaxReadConns = 4
	// PostgresMaxWriteConns is 1: writes of one process queue in the pool,
	// writes of several processes queue on the write lock (see pgWriteLock).
	PostgresMaxWriteConns = 1
	// PostgresConnMaxIdle closes a pooled connection unused this long.
	PostgresConnMaxIdle = time.Minute
	// PostgresConnMaxLifetime replaces pooled connections this old, so a
	// fail-over behind a DNS name is picked up.
	PostgresConnMaxLifetime = 30 * time.Minute
	// PostgresConnectTimeout applies when the DSN gives no connect_timeout.
	PostgresConnectTimeout = 5 * time.Second
)

// Change notification and the listener that receives it.
const (
	// NotifyChannel is the channel every write notifies, at commit, through
	// a trigger on the change log.
	NotifyChannel = "opa_pat_changes"
	// ListenHeartbeat is how long the listener waits for a notification
	// before it pings the server, to notice a connection that died quietly.
	ListenHeartbeat = 5 * time.Second
	// ListenMinBackoff and ListenMaxBackoff bound the wait between two
	// attempts to reconnect the listener; it doubles after each failure,
	// with up to 20% jitter so that a fleet does not reconnect in step. The
	// index reads the change log every second meanwhile, so a short maximum
	// only makes notifications return sooner after an outage.
	ListenMinBackoff = 100 * time.Millisecond
	ListenMaxBackoff = 2 * time.Second
)

// pgWriteLock is the advisory lock every write transaction takes first
// (pg_advisory_xact_lock, released at commit or rollback). It makes writes
// to one database serial, like SQLite's single writer: a transaction reads
// the current state (is this request still pending?) and nobody changes it
// before the commit, and change-log sequence numbers are handed out in
// commit order, so a reader that has seen change n never misses a change
// below n that commits later. The key is "opa-pat w" in ASCII.
const pgWriteLock = `SELECT pg_advisory_xact_lock(7020075453622902903)`

// postgresMigrations are applied after the shared migrations, each once,
// recorded in postgres_migrations. They hold what only PostgreSQL has.
var postgresMigrations = []migration{
	// 1: notify listeners at commit of every transaction that logs a change.
	// pg_notify collapses identical notifications of one transaction, so
	// a bulk import sends one.
	{sql: `
CREATE FUNCTION opa_pat_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('` + NotifyChannel + `', '');
	RETURN NULL;
END
$$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes FOR EACH STATEMENT EXECUTE FUNCTION opa_pat_notify_changes();
`},
}

// IsPostgres reports whether location names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// CheckLocation refuses a location that is a URL of a database opa-pat
// cannot use (mysql://, sqlite://, ...): it would otherwise be taken for a
// SQLite file path, created as such or reported as missing, with its
// password in the message. The error shows the location without its
// password.
func CheckLocation(location string) error {
	if IsPostgres(location) {
		return nil
	}
	if scheme, _, ok := strings.Cut(location, "://"); ok && urlScheme.MatchString(scheme) {
		return fmt.Errorf("%q is neither a postgres:// URL nor a file path", RedactURL(location))
	}
	if keyValueDSN.MatchString(location) {
		// Taken for a path, it would name a new SQLite file after the
		// password.
		return fmt.Errorf("%q is a key=value connection string; give the database as a postgres:// URL (docs/postgres.md)", RedactURL(location))
	}
	return nil
}

// IsKeyValueDSN reports whether s looks like libpq's key=value form of a
// connection string (host=db user=u ...), which opa-pat refuses.
func IsKeyValueDSN(s string) bool { return !IsPostgres(s) && keyValueDSN.MatchString(s) }

// keyValueDSN is libpq's key=value form of a connection string.
var keyValueDSN = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|port|dbname|user|password|sslpassword|passfile|sslmode|service)\s*=`)

// oneLineError is an error whose message is one line. pgx writes each
// failed connection attempt on a line of its own (one with TLS and one
// without, for sslmode=prefer, usually alike); a command's error and a log
// line are one line, so the attempts are joined and repeats dropped.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return oneLine(e.err.Error()) }

func (e oneLineError) Unwrap() error { return e.err }

func oneLine(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		switch {
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// urlScheme is a URL's scheme (RFC 3986): a letter, then letters, digits,
// '+', '-' and '.'.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// pgState is what a PostgreSQL-backed DB has beyond the shared *sql.DB
// pools: the connection settings for listeners and the health they report.
type pgState struct {
	config *pgx.ConnConfig
	// heartbeat is ListenHeartbeat; tests shorten it.
	heartbeat time.Duration
	// createdSchema is set when opening the store created its tables
	// (RemoveCreatedSchema).
	createdSchema bool
	// role and schema are the session's current_user and current_schema,
	// read when the store was opened, for the messages of a migration the
	// role may not run (needsCreate).
	role, schema string

	mu          sync.Mutex
	connected   int // listeners connected
	since       time.Time
	lastContact time.Time
	lastErr     string
	reconnects  int64
}

// Health is what a store knows of its connection to the database. For
// PostgreSQL it comes from the Wake listener: without a running Wake, a
// PostgreSQL store reports Connected false and no contact.
type Health struct {
	// Backend is "sqlite" or "postgres".
	Backend string `json:"backend"`
	// Connected is true while the listener's connection is up; for SQLite,
	// while the file at the store's path is the one it opened (ErrFileChanged).
	Connected bool `json:"connected"`
	// Since is when Connected last changed (SQLite: when the file was
	// found changed; zero while it is not).
	Since time.Time `json:"since"`
	// LastContact is the last time the listener heard from the server: a
	// notification or a heartbeat answer.
	LastContact time.Time `json:"last_contact"`
	// LastError is the last connection error, "" when none happened.
	LastError string `json:"last_error,omitempty"`
	// Reconnects counts the listener's reconnections after a lost
	// connection.
	Reconnects int64 `json:"reconnects"`
}

// Health reports the store's connection state; see Health.
func (db *DB) Health() Health {
	if db.pg == nil {
		h := Health{Backend: db.d.name, Connected: true}
		if db.file != nil {
			if since, err := db.file.state(); err != nil {
				h.Connected, h.Since, h.LastError = false, since, err.Error()
			}
		}
		return h
	}
	p := db.pg
	p.mu.Lock()
	defer p.mu.Unlock()
	return Health{Backend: db.d.name, Connected: p.connected > 0, Since: p.since, LastContact: p.lastContact,
		LastError: p.lastErr, Reconnects: p.reconnects}
}

// openPostgres connects to the database a postgres:// URL names and applies
// pending migrations.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	location, config, err := pgConfig(dsn)
	if err != nil {
		return nil, err
	}
	rdb := pgPool(config, PostgresMaxReadConns)
	wdb := pgPool(config, PostgresMaxWriteConns)
	db := &DB{location: location, d: postgresDialect, rdb: rdb, wdb: wdb, now: time.Now, pg: &pgState{config: config, heartbeat: ListenHeartbeat}}
	if err := db.migratePostgres(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openPostgresReadOnly connects for OpenReadOnly: every transaction is read
// only (readOnlySession), and nothing is migrated unless the schema is older
// than this build's.
func openPostgresReadOnly(ctx context.Context, dsn string) (*DB, error) {
	location, config, err := pgConfig(dsn)
	if err != nil {
		return nil, err
	}
	readOnlySession(config)
	db := &DB{location: location, d: postgresDialect, rdb: pgPool(config, PostgresMaxReadConns), now: time.Now, readOnly: true,
		pg: &pgState{config: config, heartbeat: ListenHeartbeat}}
	st, err := db.schemaState(ctx, "schema_migrations", "")
	if err != nil {
		db.Close()
		return nil, err
	}
	pgst, err := db.schemaState(ctx, "postgres_migrations", "PostgreSQL ")
	if err != nil {
		db.Close()
		return nil, err
	}
	newer, err := st.newer("schema", len(migrations))
	if err == nil && newer {
		db.notice = st.notice("schema", len(migrations))
	}
	pgNewer, pgErr := pgst.newer("PostgreSQL schema", len(postgresMigrations))
	if pgErr == nil && pgNewer {
		db.notice = joinNotices(db.notice, pgst.notice("PostgreSQL schema", len(postgresMigrations)))
	}
	if err = errors.Join(err, pgErr); err != nil {
		db.Close()
		return nil, err
	}
	if (newer || st.version == len(migrations)) && (pgNewer || pgst.version == len(postgresMigrations)) {
		return db, nil
	}
	db.Close()
	return upgradeForReading(ctx, dsn, st.version)
}

// readOnlySession makes every transaction of config's connections read only:
// it sets default_transaction_read_only once a connection is up. As a
// startup parameter the setting would be in place before pgx checks
// target_session_attrs, whose read-write check (SHOW transaction_read_only)
// would then refuse every server, and whose read-only and standby checks
// would accept a primary. AfterConnect runs after that check, on every
// connection of the pools and the listener's; a connection whose SET fails
// is not used.
func readOnlySession(config *pgx.ConnConfig) {
	after := config.AfterConnect
	config.AfterConnect = func(ctx context.Context, conn *pgconn.PgConn) error {
		if after != nil {
			if err := after(ctx, conn); err != nil {
				return err
			}
		}
		if _, err := conn.Exec(ctx, `SET SESSION default_transaction_read_only = on`).ReadAll(); err != nil {
			return fmt.Errorf("making the session read-only: %w", err)
		}
		return nil
	}
}

// pgConfig parses a postgres:// URL, with opa-pat's defaults for
// connect_timeout and application_name, and returns it redacted for
// messages.
func pgConfig(dsn string) (string, *pgx.ConnConfig, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// Go's message quotes the URL, or the part it stumbled on, which
		// may be a password with "#", "%", a space or "[" in it: it is
		// shown only for a URL that holds no credentials.
		if !mayHoldPassword(dsn) {
			return "", nil, fmt.Errorf("parsing the URL: %w", err)
		}
		return "", nil, errors.New("parsing the URL: it is not a valid URL (characters such as #, %, / or a space in a user name or password must be percent-encoded)")
	}
	location := RedactURL(dsn)
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", fmt.Sprint(int(PostgresConnectTimeout.Seconds())))
		u.RawQuery = q.Encode()
	}
	config, err := pgx.ParseConfig(u.String())
	if err != nil {
		return "", nil, fmt.Errorf("parsing the URL: %s", hideSecrets(err.Error(), u))
	}
	if config.RuntimeParams == nil {
		config.RuntimeParams = map[string]string{}
	}
	if _, ok := config.RuntimeParams["application_name"]; !ok {
		config.RuntimeParams["application_name"] = "opa-pat"
	}
	return location, config, nil
}

// pgPool is a connection pool of at most conns connections.
func pgPool(config *pgx.ConnConfig, conns int) *sql.DB {
	db := stdlib.OpenDB(*config)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(PostgresConnMaxIdle)
	db.SetConnMaxLifetime(PostgresConnMaxLifetime)
	return db
}

// RedactLocation is a store location fit for messages: a postgres:// URL
// without its password (RedactURL), a path as it is.
func RedactLocation(location string) string {
	if !IsPostgres(location) {
		return location
	}
	return RedactURL(location)
}

// RedactURL is a URL or a connection string fit for messages, whatever its
// scheme: without the password in its user information, in a password
// parameter (password=..., in a query or in libpq's key=value form, any
// case, also one Go's URL parser cannot read), and without sslpassword, the
// passphrase of the client's TLS key (pgx reads it, as libpq does). Text that does not parse as
// a URL loses what lies between the first ':' after its scheme and its
// last '@'.
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return redactPasswordParams(redactURL(u))
	}
	s = redactPasswordParams(s)
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		start = i + 3
	}
	if colon := strings.Index(s[start:at], ":"); colon >= 0 {
		return s[:start+colon+1] + "xxxxx" + s[at:]
	}
	return s
}

// passwordParam is a password or sslpassword parameter: in a URL's query
// (up to & or ;), or in libpq's key=value form (up to white space, or
// quoted).
var passwordParam = regexp.MustCompile("(?i)(^|[?&;\\s])((?:ssl)?password\\s*=\\s*)('(?:[^'\\\\]|\\\\.)*'|[^&;\\s`\"']*)")

// redactPasswordParams replaces the value of every password parameter.
func redactPasswordParams(s string) string {
	return passwordParam.ReplaceAllString(s, "${1}${2}xxxxx")
}

// redactURL is u without its password, in the user information or in a
// password or sslpassword parameter.
func redactURL(u *url.URL) string {
	r := *u
	q := r.Query()
	hidden := false
	for _, key := range secretParams {
		if q.Has(key) {
			q.Set(key, "xxxxx")
			hidden = true
		}
	}
	if hidden {
		r.RawQuery = q.Encode()
	}
	return r.Redacted()
}

// secretParams are the parameters of a postgres:// URL that hold a secret:
// the password, and the passphrase of the client's TLS key.
var secretParams = []string{"password", "sslpassword"}

// migratePostgres applies the shared migrations, then the PostgreSQL ones.
// Several processes may open a new database at once: the write lock makes
// them take turns, and the tables that record versions are created under it.
// A database at this build's schema gets no DDL at all, not even CREATE TABLE
// IF NOT EXISTS (which PostgreSQL refuses to a role without CREATE on the
// schema): the tables are looked up first, and migrateTable runs nothing
// when no migration is due, so a role that may only read and write the rows
// uses an up-to-date store.
func (db *DB) migratePostgres(ctx context.Context) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		var readOnly string
		if err := tx.QueryRowContext(ctx, `SELECT current_setting('transaction_read_only'), current_user, COALESCE(current_schema(), '')`).
			Scan(&readOnly, &db.pg.role, &db.pg.schema); err != nil {
			return fmt.Errorf("reading the session's settings: %w", err)
		}
		if readOnly == "on" {
			return errReadOnlySession
		}
		for _, table := range []string{"schema_migrations", "postgres_migrations"} {
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT to_regclass(CAST($1 AS text)) IS NOT NULL`, table).Scan(&exists); err != nil {
				return fmt.Errorf("looking up %s: %w", table, err)
			}
			if exists {
				continue
			}
			if table == "schema_migrations" {
				db.pg.createdSchema = true
			}
			if _, err := tx.ExecContext(ctx, versionsTable(table)); err != nil {
				return fmt.Errorf("creating %s: %w", table, db.needsCreate(err, "create the store's tables"))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		notice, err := db.migrateTable(ctx, tx, "postgres_migrations", "PostgreSQL ", postgresMigrations, func(v int) error {
			if _, err := tx.ExecContext(ctx, postgresMigrations[v-1].sql); err != nil {
				return fmt.Errorf("applying PostgreSQL migration %d: %w", v, err)
			}
			return nil
		})
		db.notice = joinNotices(db.notice, notice)
		return err
	})
}

// errReadOnlySession is a writer's open of a PostgreSQL session that may not
// write: it fails up front rather than at the first write.
var errReadOnlySession = fmt.Errorf("%w: %s", ErrReadOnly, readOnlySessionWhy)

// errReadOnlySessionCause is errReadOnlySession without what works with
// the session, for the upgrade of an older store (upgradeForReading), after
// which it serves the commands that only read.
var errReadOnlySessionCause = fmt.Errorf("%w: %s", ErrReadOnly, readOnlySessionCause)

// readOnlySessionCause says why a PostgreSQL session may not write, and
// readOnlySessionWhy also what works with it.
const (
	readOnlySessionCause = "the PostgreSQL session may not write (transaction_read_only is on: a hot standby, " +
		"or default_transaction_read_only set for the role, the database or in the URL)"
	readOnlySessionWhy = readOnlySessionCause + "; commands that only read work with it, " +
		"the others need the primary and a session that may write"
)

// pgCode is the SQLSTATE of a PostgreSQL error in err's chain, "" when none.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// sqlstateReadOnly is SQLSTATE read_only_sql_transaction, and
// sqlstateInsufficientPrivilege insufficient_privilege (a missing GRANT, or a
// table the role does not own).
const (
	sqlstateReadOnly              = "25006"
	sqlstateInsufficientPrivilege = "42501"
)

// needsCreate explains a PostgreSQL error of insufficient privilege that DDL
// met: the role may use a store at the current schema, but not change it.
// what is what the DDL was for ("create the store's tables", "migrate the
// schema from version 3 to 4"). Other errors, and SQLite's, are returned as
// they are.
func (db *DB) needsCreate(err error, what string) error {
	if db.pg == nil || pgCode(err) != sqlstateInsufficientPrivilege {
		return err
	}
	schema := db.pg.schema
	if schema == "" {
		schema = "(none in search_path)"
	}
	return &privilegeError{msg: fmt.Sprintf("the role %s may not %s: that takes CREATE on schema %s and, to change existing tables, owning them; "+
		"open the store once as a role that may (GRANT CREATE ON SCHEMA %s TO %s, or the tables' owner), after which roles "+
		"that may only read and write rows use it: %v", db.pg.role, what, schema, schema, db.pg.role, err), err: err}
}

// wakePostgres listens on NotifyChannel over a connection of its own and
// signals every notification. It reconnects after a lost connection with
// backoff, and signals after every (re)connection, so that the reader reads
// the change log for whatever was committed while nobody listened.
func (db *DB) wakePostgres(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	p := db.pg
	go func() {
		defer close(ch)
		backoff := ListenMinBackoff
		for connectedBefore := false; ctx.Err() == nil; {
			conn, err := p.listen(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.failed(err, false)
				if !sleep(ctx, backoff+rand.N(backoff/5)) {
					return
				}
				backoff = min(backoff*2, ListenMaxBackoff)
				continue
			}
			backoff = ListenMinBackoff
			p.up(connectedBefore)
			connectedBefore = true
			signal(ch)
			err = p.serve(ctx, conn, ch)
			closeQuietly(conn)
			if ctx.Err() != nil {
				p.down()
				return
			}
			p.failed(err, true)
		}
	}()
	return ch
}

// listen opens the listener's connection. It cancels a blocked read by
// setting a deadline on the socket instead of sending a cancel request,
// since a heartbeat timeout is routine here.
func (p *pgState) listen(ctx context.Context) (*pgx.Conn, error) {
	config := p.config.Copy()
	config.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("connecting the listener: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+NotifyChannel); err != nil {
		closeQuietly(conn)
		return nil, fmt.Errorf("listening on %s: %w", NotifyChannel, err)
	}
	return conn, nil
}

// closeQuietly closes a listener's connection, giving up on a polite
// goodbye after a second (the connection may be dead).
func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

// serve waits for notifications until the connection fails or ctx ends. A
// quiet connection is pinged every ListenHeartbeat.
func (p *pgState) serve(ctx context.Context, conn *pgx.Conn, ch chan struct{}) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, p.heartbeat)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			p.contact()
			signal(ch)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, max(p.heartbeat, time.Second))
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		p.contact()
	}
}

func (p *pgState) up(reconnect bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.connected == 0 {
		p.since = now
	}
	p.connected++
	p.lastContact = now
	if reconnect {
		p.reconnects++
	}
}

func (p *pgState) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connected--
	if p.connected == 0 {
		p.since = time.Now()
	}
}

// failed records a connection error; wasUp says the listener had been
// connected.
func (p *pgState) failed(err error, wasUp bool) {
	if wasUp {
		p.down()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err.Error()
}

func (p *pgState) contact() {
	p.mu.Lock()
	p.lastContact = time.Now()
	p.mu.Unlock()
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// hideSecrets is msg, a driver's message about u, without u's password (and
// sslpassword) in any of the forms the message may quote it in.
func hideSecrets(msg string, u *url.URL) string {
	msg = RedactURL(msg)
	var secrets []string
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
	}
	for _, kv := range strings.FieldsFunc(u.RawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword")) {
			secrets = append(secrets, v)
			if dec, err := url.QueryUnescape(v); err == nil {
				secrets = append(secrets, dec)
			}
		}
	}
	for _, p := range secrets {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// mayHoldPassword reports whether a URL that Go cannot parse may hold a
// password: a password parameter, or a ':' in what comes before its last
// '@'.
func mayHoldPassword(dsn string) bool {
	if strings.Contains(strings.ToLower(dsn), "password") {
		return true
	}
	rest := dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	return at >= 0 && strings.Contains(rest[:at], ":")
}
