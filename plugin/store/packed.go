package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/permissions"
)

// Loading a million tokens column by column costs more in the SQLite
// driver (a mutex round trip per column) than in SQLite itself, so the
// SQLite dialect selects each token and grant as one packed text column
// that packedScanner splits. Fields are separated by the unit separator
// (0x1f), which names cannot contain; the free-text field comes last.

const sep = "\x1f"

// immutablePacked computes, in SQL, what packToken stores in tokens.packed:
// the fields of a token that never change after it is written (hex hash,
// kind, user, resource owner, selection, created, expires or "", scopes,
// repositories, permissions, name). Rows written by another tool (a copy by
// store migrate) leave packed empty and are packed at load time instead.
const immutablePacked = `hex(hash) || char(31) || kind || char(31) || user_login || char(31) || resource_owner || char(31) ||
	repository_selection || char(31) || created_at || char(31) || COALESCE(expires_at, '') || char(31) ||
	scopes || char(31) || repositories || char(31) || permissions || char(31) || name`

// packedTokens selects a token as its id, revoked, last used and the packed
// immutable fields. Reading the stored packed column costs SQLite about half
// of concatenating every column on each load, and the three columns that
// change are read as they are: concatenating them too cost SQLite more than
// the driver's three more columns (a million tokens: 1.35 s against 0.93 s).
const packedTokens = `SELECT id, revoked, last_used_at, CASE WHEN packed <> '' THEN packed ELSE ` + immutablePacked + ` END FROM tokens`

// tokenRow is a row of packedTokens.
type tokenRow struct {
	id       int64
	revoked  bool
	lastUsed sql.NullInt64
	packed   string
}

func scanTokenRow(rows *sql.Rows) (r tokenRow, err error) {
	err = rows.Scan(&r.id, &r.revoked, &r.lastUsed, &r.packed)
	return r, err
}

// packToken is the Go side of immutablePacked, written with every token.
func packToken(t Token) string {
	var b strings.Builder
	b.Grow(160 + len(t.Name))
	var h [64]byte
	hex.Encode(h[:], t.Hash[:])
	b.WriteString(strings.ToUpper(string(h[:])))
	for _, f := range []string{t.Kind, t.User, t.ResourceOwner, t.RepositorySelection, strconv.FormatInt(nanos(t.CreatedAt), 10)} {
		b.WriteString(sep)
		b.WriteString(f)
	}
	b.WriteString(sep)
	if !t.ExpiresAt.IsZero() {
		b.WriteString(strconv.FormatInt(nanos(t.ExpiresAt), 10))
	}
	for _, f := range []string{joinList(t.Scopes), joinList(t.Repositories), encodePermissions(t.Permissions), t.Name} {
		b.WriteString(sep)
		b.WriteString(f)
	}
	return b.String()
}

const packedTokenFields = 11

// packedRequests selects requests as: id, token id, org, state, created,
// updated, the byte lengths of the justification and of the review reason,
// then justification, review reason and reviewer, unseparated (they may hold
// anything). packedGrants keeps the current grant of each (token, org) only,
// with a look-up per row; packedEveryRequest reads them all in id order, a
// plain scan that costs SQLite less than half as much (Visitor.EveryRequest).
const packedRequests = `SELECT r.id || char(31) || r.token_id || char(31) || r.org || char(31) || r.state || char(31) ||
	r.created_at || char(31) || r.updated_at || char(31) || length(CAST(r.justification AS BLOB)) || char(31) ||
	length(CAST(r.review_reason AS BLOB)) || char(31) || r.justification || r.review_reason || r.reviewer FROM requests r`

const (
	packedGrants       = packedRequests + ` WHERE r.id = (SELECT MAX(r2.id) FROM requests r2 WHERE r2.token_id = r.token_id AND r2.org = r.org)`
	packedEveryRequest = packedRequests + ` ORDER BY r.id`
)

// maxShared bounds the caches of shared lists and maps.
const maxShared = 1 << 16

// packedScanner decodes packed rows. Strings that repeat across tokens
// (users, owners, repository names, scopes) are interned, and identical
// lists and permission maps are shared between tokens: a Visitor must treat
// them as read-only.
type packedScanner struct {
	strs  map[string]string
	lists map[string][]string
	perms map[string]map[string]string
}

// newPackedScanner returns a scanner whose string table has room for names
// distinct strings (users are most of them) without growing. names is an
// estimate (Sizes): past maxPresize the table grows as strings come.
func newPackedScanner(names int) *packedScanner {
	return &packedScanner{strs: make(map[string]string, min(max(names, 0), maxPresize)),
		lists: map[string][]string{}, perms: map[string]map[string]string{}}
}

const maxPresize = 1 << 22

func (s *packedScanner) intern(b string) string {
	if v, ok := s.strs[b]; ok {
		return v
	}
	c := strings.Clone(b)
	s.strs[c] = c
	return c
}

func (s *packedScanner) list(enc string) []string {
	if enc == "" {
		return nil
	}
	if l, ok := s.lists[enc]; ok {
		return l
	}
	parts := strings.Split(enc, ",")
	for i, p := range parts {
		parts[i] = s.intern(p)
	}
	if len(s.lists) < maxShared {
		s.lists[s.intern(enc)] = parts
	}
	return parts
}

func (s *packedScanner) permissions(enc string) map[string]string {
	if enc == "" {
		return nil
	}
	if m, ok := s.perms[enc]; ok {
		return m
	}
	m := make(map[string]string, strings.Count(enc, ",")+1)
	for rest := enc; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ",")
		k, v, _ := strings.Cut(pair, "=")
		m[s.intern(k)] = s.intern(v)
	}
	// A token an earlier opa-pat stored holds its permissions under
	// GitHub's names, as one made since does (permissions.Normalize).
	m = permissions.Normalize(m)
	if len(s.perms) < maxShared {
		s.perms[s.intern(enc)] = m
	}
	return m
}

var errPacked = errors.New("malformed packed row")

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

func (s *packedScanner) token(tr tokenRow) (Token, error) {
	row := tr.packed
	var f [packedTokenFields]string
	for i := 0; i < packedTokenFields-1; i++ {
		var ok bool
		f[i], row, ok = strings.Cut(row, sep)
		if !ok {
			return Token{}, errPacked
		}
	}
	f[packedTokenFields-1] = row
	id := tr.id
	t := Token{ID: id, Revoked: tr.revoked, LastUsedAt: fromNullNanos(tr.lastUsed), Kind: s.intern(f[1]), User: s.intern(f[2]),
		ResourceOwner: s.intern(f[3]), RepositorySelection: s.intern(f[4]), Scopes: s.list(f[7]), Repositories: s.list(f[8]),
		Permissions: s.permissions(f[9]), Name: strings.Clone(f[10])}
	if len(f[0]) != 2*len(t.Hash) {
		return Token{}, fmt.Errorf("token %d: hash is %d hex digits, want %d", id, len(f[0]), 2*len(t.Hash))
	}
	if _, err := hex.Decode(t.Hash[:], []byte(f[0])); err != nil {
		return Token{}, fmt.Errorf("token %d: hash: %w", id, err)
	}
	created, err := parseInt(f[5])
	if err != nil {
		return Token{}, fmt.Errorf("token %d: created_at: %w", id, err)
	}
	t.CreatedAt = fromNanos(created)
	if f[6] != "" {
		n, err := parseInt(f[6])
		if err != nil {
			return Token{}, fmt.Errorf("token %d: expires_at: %w", id, err)
		}
		t.ExpiresAt = fromNanos(n)
	}
	return t, nil
}

func (s *packedScanner) grant(row string) (Grant, error) {
	var f [8]string
	for i := range f {
		var ok bool
		f[i], row, ok = strings.Cut(row, sep)
		if !ok {
			return Grant{}, errPacked
		}
	}
	var n [6]int64
	for i, j := range []int{0, 1, 4, 5, 6, 7} {
		v, err := parseInt(f[j])
		if err != nil || v < 0 {
			return Grant{}, errPacked
		}
		n[i] = v
	}
	if n[4]+n[5] > int64(len(row)) {
		return Grant{}, errPacked
	}
	justification, review, reviewer := row[:n[4]], row[n[4]:n[4]+n[5]], row[n[4]+n[5]:]
	g := Grant{ID: n[0], TokenID: n[1], Org: s.intern(f[2]), State: s.intern(f[3]), Reviewer: s.intern(reviewer),
		CreatedAt: fromNanos(n[2]), UpdatedAt: fromNanos(n[3]), Reason: strings.Clone(grantReason(justification, review))}
	if review != "" {
		g.ReviewReason = g.Reason // the same text: one copy
	}
	return g, nil
}

// loadPacked streams tokens and grants through the packed selects.
func loadPacked(ctx context.Context, tx *sql.Tx, v Visitor, names int) error {
	s := newPackedScanner(names)
	if v.Token != nil {
		if err := pipelined(ctx, tx, packedTokens, scanTokenRow, func(row tokenRow) error {
			t, err := s.token(row)
			if err != nil {
				return err
			}
			return v.Token(t)
		}); err != nil {
			return fmt.Errorf("loading tokens: %w", err)
		}
	}
	if v.Grant != nil {
		query := packedGrants
		if v.EveryRequest {
			query = packedEveryRequest
		}
		if err := pipelined(ctx, tx, query, scanString, func(row string) error {
			g, err := s.grant(row)
			if err != nil {
				return err
			}
			return v.Grant(g)
		}); err != nil {
			return fmt.Errorf("loading grants: %w", err)
		}
	}
	return nil
}

// pipelineBatch is how many rows the reader hands over at once.
const pipelineBatch = 512

func scanString(rows *sql.Rows) (s string, err error) {
	err = rows.Scan(&s)
	return s, err
}

// pipelined reads the rows of query in a goroutine of its own, scanning
// each with scan, and calls fn for each row in the caller's goroutine, so
// that SQLite's work overlaps with decoding and with the visitor's (which
// is called from one goroutine, in order).
func pipelined[R any](ctx context.Context, tx *sql.Tx, query string, scan func(*sql.Rows) (R, error), fn func(R) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	batches := make(chan []R, 4)
	free := make(chan []R, 6)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		defer rows.Close()
		for {
			var batch []R
			select {
			case batch = <-free:
				batch = batch[:0]
			default:
				batch = make([]R, 0, pipelineBatch)
			}
			for len(batch) < pipelineBatch && rows.Next() {
				row, err := scan(rows)
				if err != nil {
					readErr <- err
					return
				}
				batch = append(batch, row)
			}
			if len(batch) > 0 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					readErr <- ctx.Err()
					return
				}
			}
			if len(batch) < pipelineBatch {
				readErr <- rows.Err()
				return
			}
		}
	}()
	var fnErr error
	for batch := range batches {
		if fnErr == nil {
			for _, row := range batch {
				if fnErr = fn(row); fnErr != nil {
					cancel() // stops the reader; keep draining until it closes batches
					break
				}
			}
		}
		clear(batch)
		select {
		case free <- batch:
		default:
		}
	}
	if fnErr != nil {
		return fnErr
	}
	return <-readErr
}
