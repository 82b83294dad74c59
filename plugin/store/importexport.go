package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/opa-pat/opa-pat/plugin/jsonkey"
	"github.com/opa-pat/opa-pat/plugin/permissions"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// Dump is the import and export format (DESIGN.md "Admin API and CLI").
type Dump struct {
	Users        []DumpUser       `json:"users"`
	Memberships  []DumpMembership `json:"memberships"`
	Repositories []DumpRepository `json:"repositories"`
	Tokens       []DumpToken      `json:"tokens"`
	Grants       []DumpGrant      `json:"grants"`

	// Warnings name the unknown fields ParseDump ignored.
	Warnings []string `json:"-"`
}

// DumpUser is a user record of a dump. ManagedBy must be given, null for
// a user no enterprise manages: import refuses a record that leaves it out
// (Import), which would otherwise take the user out of the enterprise's
// policy (SEMANTICS.md rule 27), silently.
type DumpUser struct {
	Login     string   `json:"login"`
	ManagedBy Nullable `json:"managed_by,omitzero"`
}

// Nullable is the value of a key that a record must give, though null is
// one of its values: Present says whether the record has the key, Value is
// nil for null. In JSON, a key left out and a key written null are two
// things; a producer that does not know the key leaves it out, and import
// refuses that where the default would loosen the policy. A Nullable that
// is not Present is written as no key at all (omitzero).
type Nullable struct {
	Value   *string
	Present bool
}

// Null is a key given as null.
func Null() Nullable { return Nullable{Present: true} }

// NonNull is a key given as s.
func NonNull(s string) Nullable { return Nullable{Value: &s, Present: true} }

// nullable is a key given as *p, or null when p is nil.
func nullable(p *string) Nullable { return Nullable{Value: p, Present: true} }

// IsZero reports whether the key is absent, for omitzero.
func (n Nullable) IsZero() bool { return !n.Present }

// MarshalJSON writes the value, or null.
func (n Nullable) MarshalJSON() ([]byte, error) { return json.Marshal(n.Value) }

// UnmarshalJSON reads a string or null; encoding/json calls it only for a
// key the record has, null included.
func (n *Nullable) UnmarshalJSON(b []byte) error {
	n.Present = true
	n.Value = nil
	return json.Unmarshal(b, &n.Value)
}

// DumpMembership is a membership record of a dump.
type DumpMembership struct {
	User string `json:"user"`
	Org  string `json:"org"`
	Role string `json:"role"`
}

// DumpRepository is a repository record of a dump.
type DumpRepository struct {
	Owner      string `json:"owner"`
	Name       string `json:"name"`
	Visibility string `json:"visibility"`
}

// DumpToken is a token record of a dump: the raw token (on import only) or
// the hex SHA-256 of it. Repositories, Permissions and Scopes say what the
// token may reach: import refuses a record that leaves out (or writes null)
// those of its kind (dumpToken), and an empty list or map is written as []
// or {} (omitzero omits nil only), as Export writes them (exportReach).
// CreatedAt, ExpiresAt and Revoked say how long the token lives: import
// refuses a record that leaves one out (CreatedAt and Revoked also null;
// ExpiresAt null means no expiry), which Export always writes.
type DumpToken struct {
	Token               string            `json:"token,omitempty"`
	TokenSHA256         string            `json:"token_sha256,omitempty"`
	Name                string            `json:"name"`
	Kind                string            `json:"kind"`
	User                string            `json:"user"`
	ResourceOwner       string            `json:"resource_owner,omitempty"`
	RepositorySelection string            `json:"repository_selection,omitempty"`
	Repositories        []string          `json:"repositories,omitzero"`
	Permissions         map[string]string `json:"permissions,omitzero"`
	Scopes              []string          `json:"scopes,omitzero"`
	CreatedAt           *string           `json:"created_at,omitempty"`
	ExpiresAt           Nullable          `json:"expires_at,omitzero"`
	Revoked             *bool             `json:"revoked,omitempty"`
	LastUsedAt          *string           `json:"last_used_at,omitempty"`
}

// DumpGrant is the current grant of a token for an organization. The token
// is named by token_sha256, or by token_name and user.
type DumpGrant struct {
	TokenSHA256 string `json:"token_sha256,omitempty"`
	TokenName   string `json:"token_name,omitempty"`
	User        string `json:"user,omitempty"`
	Org         string `json:"org"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Reviewer    string `json:"reviewer,omitempty"`
	// Justification is the requester's, for a grant that was reviewed
	// (approved, denied, revoked): Reason is then the reviewer's, empty when
	// the review gave none. A pending grant's Reason is its justification.
	Justification string `json:"justification,omitempty"`
}

// ImportResult counts the records an import changed: added, or found
// different from the store's and written. Unchanged counts the records
// that said what the store already held, and that the import therefore
// left as they were (no write, no change-log entry).
type ImportResult struct {
	Users, Memberships, Repositories, Tokens, Grants int
	Unchanged                                        int `json:",omitempty"`
}

// rawDump defers the decoding of each record, so that an error names it.
type rawDump struct {
	Users        []json.RawMessage `json:"users"`
	Memberships  []json.RawMessage `json:"memberships"`
	Repositories []json.RawMessage `json:"repositories"`
	Tokens       []json.RawMessage `json:"tokens"`
	Grants       []json.RawMessage `json:"grants"`
}

// ParseDump decodes a dump. Wrong types are errors naming the record's
// index and field; unknown fields are ignored, each named in Warnings. A
// byte that is not UTF-8, or a lone UTF-16 surrogate ("\ud800"), anywhere
// in the file is an error naming where it is (jsonkey.Check): Go's reader
// would keep U+FFFD in its place without a word, and a name, a login or a
// reason would be imported as something else than the file says.
func ParseDump(r io.Reader) (*Dump, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	var d Dump
	var raw rawDump
	if err := decodeRecord("", b, &raw, &d.Warnings); err != nil {
		return nil, fmt.Errorf("decoding: %w", jsonkey.Located(b, err))
	}
	// b is one JSON value, as Check needs: the decoder read all of it.
	if err := jsonkey.Check(b); err != nil {
		return nil, err
	}
	if err := keyTwice(b); err != nil {
		return nil, err
	}
	if d.Users, err = decodeRecords[DumpUser]("users", raw.Users, &d.Warnings); err != nil {
		return nil, err
	}
	if d.Memberships, err = decodeRecords[DumpMembership]("memberships", raw.Memberships, &d.Warnings); err != nil {
		return nil, err
	}
	if d.Repositories, err = decodeRecords[DumpRepository]("repositories", raw.Repositories, &d.Warnings); err != nil {
		return nil, err
	}
	if d.Tokens, err = decodeRecords[DumpToken]("tokens", raw.Tokens, &d.Warnings); err != nil {
		return nil, err
	}
	if d.Grants, err = decodeRecords[DumpGrant]("grants", raw.Grants, &d.Warnings); err != nil {
		return nil, err
	}
	return &d, nil
}

// keyTwice refuses a JSON text with a key twice in one object, also in
// another case ("login" and "Login"): Go's reader binds both to one field
// of a record and keeps the last without a word, so a file that a reviewer
// reads as bob's could import as eve's. The error names the object, the
// keys and where the second one is.
func keyTwice(b []byte) error {
	first, second, at, found := jsonkey.FoldedTwiceAt(b)
	if !found {
		return nil
	}
	path, _ := jsonkey.Path(b, at)
	where := ""
	if path != "" {
		where = path + ": "
	}
	line, col := jsonkey.Position(b, at)
	if first == second {
		return fmt.Errorf("%sthe key %s is given twice, at line %d, column %d: only one of the two would be read; give each key once",
			where, token.Quote(first), line, col)
	}
	return fmt.Errorf("%sthe keys %s and %s differ only in case, at line %d, column %d: both would be read as one field, the last; give each key once, as documented",
		where, token.Quote(first), token.Quote(second), line, col)
}

func decodeRecords[T any](name string, raws []json.RawMessage, warnings *[]string) ([]T, error) {
	out := make([]T, len(raws))
	for i, raw := range raws {
		if err := decodeRecord(fmt.Sprintf("%s[%d]", name, i), raw, &out[i], warnings); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeRecord decodes one JSON value strictly; when the only trouble is
// unknown fields, it names them in warnings and decodes again leniently.
func decodeRecord(record string, raw []byte, v any, warnings *[]string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// A second document after the first would be ignored, with what
		// it holds: refuse the file instead.
		if _, err := dec.Token(); err != io.EOF {
			return jsonError(record, errors.New("more after the JSON value: give one document"))
		}
		return nil
	}
	if !strings.HasPrefix(err.Error(), "json: unknown field ") {
		return jsonError(record, err)
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) == nil {
		known := knownFields(v)
		var unknown []string
		for k := range fields {
			if !known[k] {
				unknown = append(unknown, token.Quote(k))
			}
		}
		slices.Sort(unknown)
		where := record
		if where == "" {
			where = "top level"
		}
		*warnings = append(*warnings, fmt.Sprintf("%s: ignored unknown %s %s", where, plural("field", len(unknown)), strings.Join(unknown, ", ")))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return jsonError(record, err)
	}
	return nil
}

// knownFields lists the JSON names of the fields of the struct v points to.
func knownFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	known := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	return known
}

// jsonError rewrites encoding/json's errors to name the record and field.
func jsonError(record string, err error) error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		where := record
		if te.Field != "" {
			if where != "" {
				where += "."
			}
			where += te.Field
		}
		if where == "" {
			return fmt.Errorf("expected %s, got %s", jsonType(te.Type.Kind().String()), te.Value)
		}
		return fmt.Errorf("%s: expected %s, got %s", where, jsonType(te.Type.Kind().String()), te.Value)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if record == "" {
			return fmt.Errorf("unknown field %s", msg)
		}
		return fmt.Errorf("%s: unknown field %s", record, msg)
	}
	if record == "" {
		return err
	}
	return fmt.Errorf("%s: %w", record, err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	case "ptr":
		return "a string or null"
	}
	return kind
}

func parseTime(field string, s *string, def time.Time) (time.Time, error) {
	if s == nil {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %s is not an RFC 3339 time", field, token.Quote(*s))
	}
	return t.UTC(), CheckTime(field, t)
}

// HashFromHex decodes a hex SHA-256. Its error does not repeat s: a raw
// token put in a hash's place would otherwise be printed.
func HashFromHex(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("not 64 hexadecimal digits but %d bytes (not shown: they may be a raw token)", len(s))
	}
	copy(h[:], b)
	return h, nil
}

// Prefixes returns this store's token prefixes: GitHub's unless recorded in
// meta.
func (db *DB) Prefixes(ctx context.Context) (token.Prefixes, error) {
	p := token.DefaultPrefixes
	if v, ok, err := db.Meta(ctx, MetaClassicPrefix); err != nil {
		return p, err
	} else if ok {
		p.Classic = v
	}
	if v, ok, err := db.Meta(ctx, MetaFineGrainedPrefix); err != nil {
		return p, err
	} else if ok {
		p.FineGrained = v
	}
	return p, nil
}

type tokenRef struct{ user, name string }

// Import writes a dump in one transaction: everything or, at the first bad
// record, nothing. Users, memberships and repositories are upserted by key,
// tokens by hash (but never to another user, kind or resource owner, nor
// back from revoked); a grant whose state differs from the token's current grant
// for the organization is added as its newest request. Users named by
// tokens and memberships but not listed are created.
func (db *DB) Import(ctx context.Context, d *Dump, actor string) (ImportResult, error) {
	res, _, err := db.importUnless(ctx, d, actor, nil)
	return res, err
}

// importUnless is Import. When skip is given, it runs first in the import's
// write transaction, under the write lock: when it returns a description
// of what it found, importUnless writes nothing and returns that instead.
func (db *DB) importUnless(ctx context.Context, d *Dump, actor string, skip func(tx *sql.Tx) (found string, err error)) (ImportResult, string, error) {
	if err := CheckActor("actor", actor); err != nil {
		return ImportResult{}, "", err
	}
	prefixes, err := db.Prefixes(ctx)
	if err != nil {
		return ImportResult{}, "", err
	}
	now := db.now()
	// Two records of one thing are refused: the last would win, silently.
	users := make([]User, len(d.Users))
	userAt := make(map[string]int, len(d.Users))
	for i, u := range d.Users {
		users[i] = User{Login: u.Login}
		if u.ManagedBy.Value != nil {
			users[i].ManagedBy = *u.ManagedBy.Value
		}
		if err := validateUser(users[i]); err != nil {
			return ImportResult{}, "", fmt.Errorf("users[%d].%w", i, err)
		}
		// A record replaces the user's row, and one without managed_by
		// would store the user as no enterprise's: a file whose producer
		// does not know the key would take a managed user out of the
		// enterprise's lifetime limit on the user's own repositories
		// (rule 27), silently. null says "not managed" in the record.
		if !u.ManagedBy.Present {
			return ImportResult{}, "", fmt.Errorf("users[%d].managed_by: missing for %s; give the enterprise that manages the user, or null for none: "+
				"an import cannot take a user out of an enterprise's policy by leaving it out", i, token.Quote(u.Login))
		}
		if j, dup := userAt[u.Login]; dup {
			return ImportResult{}, "", fmt.Errorf("users[%d].login: %q again (users[%d])", i, u.Login, j)
		}
		userAt[u.Login] = i
	}
	members := make([]Membership, len(d.Memberships))
	memberAt := make(map[[2]string]int, len(d.Memberships))
	for i, m := range d.Memberships {
		members[i] = Membership(m)
		if err := validateMembership(members[i]); err != nil {
			return ImportResult{}, "", fmt.Errorf("memberships[%d].%w", i, firstErr(err))
		}
		if j, dup := memberAt[[2]string{m.User, m.Org}]; dup {
			return ImportResult{}, "", fmt.Errorf("memberships[%d]: %q in %q again (memberships[%d])", i, m.User, m.Org, j)
		}
		memberAt[[2]string{m.User, m.Org}] = i
	}
	repos := make([]Repository, len(d.Repositories))
	repoAt := make(map[[2]string]int, len(d.Repositories))
	for i, r := range d.Repositories {
		repos[i] = Repository(r)
		if err := validateRepository(repos[i]); err != nil {
			return ImportResult{}, "", fmt.Errorf("repositories[%d].%w", i, firstErr(err))
		}
		if j, dup := repoAt[[2]string{r.Owner, r.Name}]; dup {
			return ImportResult{}, "", fmt.Errorf("repositories[%d]: %q again (repositories[%d])", i, r.Owner+"/"+r.Name, j)
		}
		repoAt[[2]string{r.Owner, r.Name}] = i
	}
	tokens := make([]Token, len(d.Tokens))
	byHash := make(map[[32]byte]int, len(d.Tokens))
	byName := make(map[tokenRef]int, len(d.Tokens))
	for i, dt := range d.Tokens {
		t, err := dumpToken(dt, prefixes, now)
		if err != nil {
			return ImportResult{}, "", fmt.Errorf("tokens[%d].%w", i, err)
		}
		if j, dup := byHash[t.Hash]; dup {
			return ImportResult{}, "", fmt.Errorf("tokens[%d].token: the same token as tokens[%d]", i, j)
		}
		byHash[t.Hash] = i
		ref := tokenRef{t.User, t.Name}
		if _, dup := byName[ref]; dup {
			byName[ref] = -1 // ambiguous: grants must name it by token_sha256
		} else {
			byName[ref] = i
		}
		tokens[i] = t
	}
	for i, g := range d.Grants {
		// token_name and user only name the token, but errors quote them.
		if err := errors.Join(checkGitHubName("org", g.Org), checkEnum("state", g.State, grantStates),
			CheckText("reason", g.Reason), CheckText("justification", g.Justification), CheckText("reviewer", g.Reviewer),
			CheckPlain("token_name", g.TokenName), CheckPlain("user", g.User)); err != nil {
			return ImportResult{}, "", fmt.Errorf("grants[%d].%w", i, firstErr(err))
		}
	}

	var res ImportResult
	var found string
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, found = ImportResult{}, ""
		if skip != nil {
			var err error
			if found, err = skip(tx); err != nil || found != "" {
				return err
			}
		}
		// A whole-store import runs each statement below once per record.
		w := newStmtCache(tx)
		if err := checkSpellings(ctx, tx, db.d, func(fn nameFunc) error { return dumpNames(d, fn) }, "in the store or earlier in the file"); err != nil {
			return err
		}
		// The records are checked against the store before anything is
		// written: stored[i] is the store's token of tokens[i] (ID 0: new).
		stored := make([]Token, len(tokens))
		for i := range tokens {
			cur, ok, err := storedToken(ctx, w, tokens[i].Hash)
			if err != nil {
				return fmt.Errorf("tokens[%d]: %w", i, err)
			}
			if !ok {
				continue
			}
			// A token is its user's, of its kind, for its resource owner
			// from its creation: a record that says otherwise would hand
			// the token to someone else.
			if field := identityChange(cur, tokens[i]); field != "" {
				return fmt.Errorf("tokens[%d].%s: the store's token %d is %s; an import cannot change a token's user, kind or resource owner",
					i, field, cur.ID, describeToken(cur))
			}
			// A token's last use only moves forward: a record that has none,
			// or an older one (an earlier export), keeps the store's.
			if cur.LastUsedAt.After(tokens[i].LastUsedAt) {
				tokens[i].LastUsedAt = cur.LastUsedAt
			}
			// A revoked token stays revoked (SEMANTICS.md rule 2): its user
			// revoked it after the file was written, perhaps because it
			// leaked.
			if cur.Revoked && !tokens[i].Revoked {
				return fmt.Errorf("tokens[%d].revoked: token %d is revoked in the store; an import cannot bring a revoked token back", i, cur.ID)
			}
			// A record replaces the row, and expires_at null means no
			// expiry (dumpToken refuses a record without the key): null
			// from a producer that does not know expiries would make an
			// expiring token live for ever, silently. An expiry is changed
			// only by a date written in the record.
			if !cur.ExpiresAt.IsZero() && tokens[i].ExpiresAt.IsZero() {
				return fmt.Errorf("tokens[%d].expires_at: token %d expires at %s in the store; give that time (or another) for it: an import cannot make an expiring token non-expiring",
					i, cur.ID, cur.ExpiresAt.UTC().Format(time.RFC3339Nano))
			}
			stored[i] = cur
		}
		// grantFile[i] is the index in tokens of the token grants[i] names,
		// or -1 with grantStored[i] the store's token.
		grantFile := make([]int, len(d.Grants))
		grantStored := make([]Token, len(d.Grants))
		grantAt := make(map[grantRef]int, len(d.Grants))
		for i, dg := range d.Grants {
			j, t, err := grantToken(ctx, w, dg, tokens, byHash, byName)
			if err != nil {
				return fmt.Errorf("grants[%d].%w", i, err)
			}
			grantFile[i], grantStored[i] = j, t
			// A token the store has is named by its id, a new one by its
			// record.
			name := fmt.Sprintf("token %d", t.ID)
			if j >= 0 {
				name = fmt.Sprintf("token %d", stored[j].ID)
				if stored[j].ID == 0 {
					name = fmt.Sprintf("tokens[%d]", j)
				}
			}
			if field, err := grantFault(name, t, dg.Org); err != nil {
				return fmt.Errorf("grants[%d]%s: %w", i, field, err)
			}
			ref := grantRef{t.Hash, dg.Org}
			if k, dup := grantAt[ref]; dup {
				return fmt.Errorf("grants[%d]: the same token's grant for %q again (grants[%d])", i, dg.Org, k)
			}
			grantAt[ref] = i
		}
		// A record that says what the store holds writes nothing: every
		// change-log entry makes each sidecar re-read the record, so an
		// import of an export, run from cron, would wake the fleet for
		// nothing. The upserts change a row only when a value differs.
		for _, u := range users {
			changed, err := upsert(ctx, w, `INSERT INTO users (login, managed_by) VALUES ($1, $2)
ON CONFLICT (login) DO UPDATE SET managed_by = excluded.managed_by WHERE users.managed_by <> excluded.managed_by`, u.Login, u.ManagedBy)
			if err != nil {
				return fmt.Errorf("writing user %q: %w", u.Login, err)
			}
			if !changed {
				res.Unchanged++
				continue
			}
			if err := logChange(ctx, w, EntityUser, u.Login); err != nil {
				return err
			}
			res.Users++
		}
		for _, m := range members {
			if err := ensureUser(ctx, w, m.User); err != nil {
				return err
			}
			changed, err := upsert(ctx, w, `INSERT INTO memberships (user_login, org, role) VALUES ($1, $2, $3)
ON CONFLICT (user_login, org) DO UPDATE SET role = excluded.role WHERE memberships.role <> excluded.role`, m.User, m.Org, m.Role)
			if err != nil {
				return fmt.Errorf("writing membership %s/%s: %w", m.User, m.Org, err)
			}
			if !changed {
				res.Unchanged++
				continue
			}
			if err := logChange(ctx, w, EntityMembership, m.User+"/"+m.Org); err != nil {
				return err
			}
			res.Memberships++
		}
		for _, r := range repos {
			changed, err := upsert(ctx, w, `INSERT INTO repositories (owner, name, visibility) VALUES ($1, $2, $3)
ON CONFLICT (owner, name) DO UPDATE SET visibility = excluded.visibility WHERE repositories.visibility <> excluded.visibility`, r.Owner, r.Name, r.Visibility)
			if err != nil {
				return fmt.Errorf("writing repository %s/%s: %w", r.Owner, r.Name, err)
			}
			if !changed {
				res.Unchanged++
				continue
			}
			if err := logChange(ctx, w, EntityRepository, r.Owner+"/"+r.Name); err != nil {
				return err
			}
			res.Repositories++
		}
		for i := range tokens {
			if stored[i].ID != 0 && sameToken(stored[i], tokens[i]) {
				tokens[i].ID = stored[i].ID
				res.Unchanged++
				continue
			}
			if err := ensureUser(ctx, w, tokens[i].User); err != nil {
				return err
			}
			id, err := insertToken(ctx, w, tokens[i])
			if err != nil {
				return fmt.Errorf("tokens[%d]: %w", i, err)
			}
			tokens[i].ID = id
			// A record that revokes a live token is a revocation of its own
			// in the audit log, marked as the import's, as grants are.
			if stored[i].ID != 0 && !stored[i].Revoked && tokens[i].Revoked {
				if err := db.audit(ctx, w, AuditEvent{At: now, Actor: actor, Action: ActionTokenRevoke, Org: tokens[i].ResourceOwner, TokenID: id,
					Details: map[string]any{"via": ActionStoreImport}}); err != nil {
					return err
				}
			}
			res.Tokens++
		}
		for i, dg := range d.Grants {
			t := grantStored[i]
			if j := grantFile[i]; j >= 0 {
				t = tokens[j]
			}
			justification, review := cmp.Or(dg.Reason, dg.Justification), ""
			if dg.State != GrantPending {
				justification, review = dg.Justification, dg.Reason
			}
			same, err := sameCurrentRequest(ctx, w, t.ID, dg, justification, review)
			if err != nil {
				return err
			}
			if same {
				res.Unchanged++
				continue
			}
			g := Grant{TokenID: t.ID, Org: dg.Org, State: dg.State, Reviewer: dg.Reviewer, CreatedAt: now, UpdatedAt: now}
			id, err := insertRequest(ctx, w, g, justification, review)
			if err != nil {
				return fmt.Errorf("grants[%d]: %w", i, err)
			}
			// Each grant the import changes is a transition of its own in the
			// organization's audit log (rule 23), marked as the import's.
			if err := db.audit(ctx, w, AuditEvent{At: now, Actor: actor, Action: importActions[dg.State], Org: dg.Org, TokenID: t.ID, RequestID: id,
				Reason: dg.Reason, Details: map[string]any{"via": ActionStoreImport}}); err != nil {
				return err
			}
			res.Grants++
		}
		// The import is on record even when it changed nothing: its counts
		// say so.
		return db.audit(ctx, w, AuditEvent{At: now, Actor: actor, Action: ActionStoreImport, Details: map[string]any{
			"users": res.Users, "memberships": res.Memberships, "repositories": res.Repositories, "tokens": res.Tokens, "grants": res.Grants,
			"unchanged": res.Unchanged}})
	})
	if err != nil {
		return ImportResult{}, "", err
	}
	return res, found, nil
}

// upsert runs an INSERT ... ON CONFLICT DO UPDATE ... WHERE and reports
// whether it inserted or updated a row.
func upsert(ctx context.Context, tx execer, query string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// sameToken reports whether a token record says what the store's row of
// the token holds, column for column (the packed form covers every column
// but revoked and last_used_at).
func sameToken(cur, t Token) bool {
	return cur.Revoked == t.Revoked && cur.LastUsedAt.Equal(t.LastUsedAt) && packToken(cur) == packToken(t)
}

// importActions are the audit actions of grants an import records, by state.
var importActions = map[string]string{
	GrantPending: ActionRequestCreate, GrantApproved: ActionRequestApprove, GrantDenied: ActionRequestDeny, GrantRevoked: ActionGrantRevoke,
}

func firstErr(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()[0]
	}
	return err
}

// sameCurrentRequest reports whether the token's current request for the
// grant's organization already says what the import would record: an
// import of an export is then a no-op. A record that gives no
// justification keeps whatever the store has.
func sameCurrentRequest(ctx context.Context, tx execer, tokenID int64, dg DumpGrant, justification, review string) (bool, error) {
	var state, j, r, reviewer string
	err := tx.QueryRowContext(ctx, `SELECT state, justification, review_reason, reviewer FROM requests WHERE token_id = $1 AND org = $2 ORDER BY id DESC LIMIT 1`,
		tokenID, dg.Org).Scan(&state, &j, &r, &reviewer)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the grant of token %d for %s: %w", tokenID, dg.Org, err)
	}
	if dg.State != GrantPending && dg.Justification == "" && dg.Reason != "" && r == "" && j == dg.Reason {
		// An older export, whose reason of a grant reviewed without one is
		// the requester's justification.
		return state == dg.State && reviewer == dg.Reviewer, nil
	}
	return state == dg.State && reviewer == dg.Reviewer && r == review && (justification == "" || j == justification), nil
}

// grantRef is a grant's key: the token's hash and the organization.
type grantRef struct {
	hash [32]byte
	org  string
}

// grantToken finds the token a grant names: in the dump first, then in the
// store as it was before the import. It returns the token's index in
// tokens, or -1 and the store's token.
func grantToken(ctx context.Context, tx execer, g DumpGrant, tokens []Token, byHash map[[32]byte]int, byName map[tokenRef]int) (int, Token, error) {
	if g.TokenSHA256 != "" {
		h, err := HashFromHex(g.TokenSHA256)
		if err != nil {
			return -1, Token{}, fmt.Errorf("token_sha256: %w", err)
		}
		if i, ok := byHash[h]; ok {
			return i, tokens[i], nil
		}
		t, ok, err := storedToken(ctx, tx, h)
		if err == nil && !ok {
			return -1, Token{}, fmt.Errorf("token_sha256: no such token")
		}
		return -1, t, err
	}
	if g.TokenName == "" || g.User == "" {
		return -1, Token{}, errors.New("token_name: give token_name and user, or token_sha256")
	}
	if i, ok := byName[tokenRef{g.User, g.TokenName}]; ok {
		if i < 0 {
			return -1, Token{}, fmt.Errorf("token_name: %s has several tokens named %q; name the token by token_sha256", g.User, g.TokenName)
		}
		return i, tokens[i], nil
	}
	var found []Token
	var sc tokenScanner
	err := each(ctx, tx, `SELECT `+tokenColumns+` FROM tokens WHERE user_login = $1 AND name = $2 AND revoked = $3`, func(rows *sql.Rows) error {
		t, err := sc.scan(rows)
		found = append(found, t)
		return err
	}, g.User, g.TokenName, false)
	if err != nil {
		return -1, Token{}, fmt.Errorf("token_name: %w", err)
	}
	switch len(found) {
	case 0:
		return -1, Token{}, fmt.Errorf("token_name: %s has no token named %q", g.User, g.TokenName)
	case 1:
		// The file's record of the token, when it has one under another
		// name: the import writes that.
		if i, ok := byHash[found[0].Hash]; ok {
			return i, tokens[i], nil
		}
		return -1, found[0], nil
	}
	return -1, Token{}, fmt.Errorf("token_name: %s has several tokens named %q; name the token by token_sha256", g.User, g.TokenName)
}

// grantFault says why token t, which name names, can have no grant for
// org, or returns nil: only fine-grained tokens have grants (rule 17), and
// only for their resource owner (rule 6). field is ".org" when org is at
// fault, "" when the token is. Import checks its grants with it, and
// MigrateStore the source's requests.
func grantFault(name string, t Token, org string) (field string, err error) {
	if t.Kind != KindFineGrained {
		return "", fmt.Errorf("%s is a %s token; only fine-grained tokens have grants (rule 17)", name, t.Kind)
	}
	if org != t.ResourceOwner {
		return ".org", fmt.Errorf("%s's resource owner is %s, not %s (rule 6)", name, t.ResourceOwner, org)
	}
	return "", nil
}

// identityChange names the first of user, kind and resource_owner in which
// t differs from the store's token cur, or returns "".
func identityChange(cur, t Token) string {
	switch {
	case t.User != cur.User:
		return "user"
	case t.Kind != cur.Kind:
		return "kind"
	case t.ResourceOwner != cur.ResourceOwner:
		return "resource_owner"
	}
	return ""
}

// describeToken says whose token t is, of which kind, and for whom: "bob's
// fine-grained token for octo-org".
func describeToken(t Token) string {
	if t.Kind == KindFineGrained {
		return fmt.Sprintf("%s's fine-grained token for %s", t.User, t.ResourceOwner)
	}
	return fmt.Sprintf("%s's %s token", t.User, t.Kind)
}

// storedToken reads the store's token of a hash, if any.
func storedToken(ctx context.Context, tx execer, h [32]byte) (Token, bool, error) {
	var sc tokenScanner
	t, err := sc.scan(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, false, nil
	}
	if err != nil {
		return Token{}, false, fmt.Errorf("reading the store's token: %w", err)
	}
	return t, true, nil
}

func dumpToken(dt DumpToken, prefixes token.Prefixes, now time.Time) (Token, error) {
	// An export of an earlier opa-pat may name permissions as it did: the
	// store writes GitHub's names, as it reads them (permissions.Normalize).
	t := Token{
		Name: dt.Name, Kind: dt.Kind, User: dt.User, Scopes: dt.Scopes, ResourceOwner: dt.ResourceOwner,
		RepositorySelection: dt.RepositorySelection, Repositories: dt.Repositories, Permissions: permissions.Normalize(dt.Permissions),
		Revoked: dt.Revoked != nil && *dt.Revoked,
	}
	switch {
	case dt.Token != "" && dt.TokenSHA256 != "":
		return Token{}, errors.New("token: give token or token_sha256, not both")
	case dt.Token != "":
		kind, ok := token.Parse(dt.Token, prefixes)
		if !ok {
			return Token{}, errors.New("token: not a valid token (prefix, length or checksum)")
		}
		if dt.Kind != "" && kind != dt.Kind {
			if err := CheckPlain("kind", dt.Kind); err != nil {
				return Token{}, err
			}
			return Token{}, fmt.Errorf("kind: %q, but the token is %s", dt.Kind, kind)
		}
		t.Kind = kind
		t.Hash = token.Hash(dt.Token)
	case dt.TokenSHA256 != "":
		h, err := HashFromHex(dt.TokenSHA256)
		if err != nil {
			return Token{}, fmt.Errorf("token_sha256: %w", err)
		}
		t.Hash = h
	default:
		return Token{}, errors.New("token: give token or token_sha256")
	}
	var err error
	if t.CreatedAt, err = parseTime("created_at", dt.CreatedAt, now); err != nil {
		return Token{}, err
	}
	if t.ExpiresAt, err = parseTime("expires_at", dt.ExpiresAt.Value, time.Time{}); err != nil {
		return Token{}, err
	}
	if t.LastUsedAt, err = parseTime("last_used_at", dt.LastUsedAt, time.Time{}); err != nil {
		return Token{}, err
	}
	if err := ValidateToken(t); err != nil {
		return Token{}, err
	}
	// A record replaces the token's row, and a list or map it leaves out
	// (or writes null) would be stored empty: importing a file whose
	// producer does not know the field would narrow a known token silently,
	// a fine-grained one to metadata: read, a classic one to no scope, one
	// for selected repositories to none. What a token may reach changes
	// only by what the record writes; {} and [] are taken as written.
	const narrow = "an import cannot narrow a token by leaving them out"
	switch {
	case t.Kind == KindFineGrained && dt.Permissions == nil:
		return Token{}, errors.New("permissions: missing (or null); give the token's permissions, {} for metadata: read only: " + narrow)
	case t.Kind == KindFineGrained && t.RepositorySelection == "selected" && dt.Repositories == nil:
		return Token{}, errors.New("repositories: missing (or null); give the token's repositories, [] for none: " + narrow)
	case t.Kind == KindClassic && dt.Scopes == nil:
		return Token{}, errors.New("scopes: missing (or null); give the token's scopes, [] for none: " + narrow)
	case t.Kind == KindFineGrained && t.RepositorySelection != "selected" && len(dt.Repositories) > 0:
		// A list with "all" or "public" counts for nothing (rule 7), so a
		// record that gives one contradicts itself: refused, as the CLI
		// and the admin API refuse it.
		return Token{}, fmt.Errorf(`repositories: only with repository_selection "selected", and this token's is %q`, t.RepositorySelection)
	}
	// Likewise for how long the token lives: a record without created_at
	// would date the token from the import, shortening its lifetime
	// (expires_at - created_at, rule 25) below a limit it breaks (rule
	// 26); one without expires_at would make it live for ever (rule 2);
	// one without revoked would make a revoked token live. The producer
	// that leaves them out may mean anything; null is no expiry, as Export
	// writes it.
	switch {
	case dt.CreatedAt == nil:
		return Token{}, errors.New("created_at: missing (or null); give the token's creation time: an import cannot shorten a token's lifetime by leaving it out")
	case !dt.ExpiresAt.Present:
		return Token{}, errors.New("expires_at: missing; give the token's expiry, or null for none: an import cannot make a token non-expiring by leaving it out")
	case dt.Revoked == nil:
		return Token{}, errors.New("revoked: missing (or null); give true or false: an import cannot make a revoked token live by leaving it out")
	}
	// metadata: read is always present (SEMANTICS.md rule 8), as token
	// creation records it; the admin API's permission filter reads it.
	if t.Kind == KindFineGrained {
		if _, ok := t.Permissions["metadata"]; !ok {
			perms := maps.Clone(t.Permissions)
			if perms == nil {
				perms = map[string]string{}
			}
			perms["metadata"] = "read"
			t.Permissions = perms
		}
	}
	return t, nil
}

// exportReach writes what a token may reach as import wants it (dumpToken):
// permissions for a fine-grained token, repositories for one for selected
// repositories and scopes for a classic token, {} or [] when the store has
// none; any other list or map only when the store has one (scopes of a
// fine-grained token, say, which import refuses). A list of repositories
// kept with "all" or "public" (which earlier versions recorded as given)
// counts for nothing and is left out, so that the export imports again.
func exportReach(dt *DumpToken) {
	if dt.Kind == KindFineGrained && dt.RepositorySelection != "selected" {
		dt.Repositories = nil
	}
	if len(dt.Repositories) == 0 {
		dt.Repositories = nil
		if dt.Kind == KindFineGrained && dt.RepositorySelection == "selected" {
			dt.Repositories = []string{}
		}
	}
	if len(dt.Permissions) == 0 {
		dt.Permissions = nil
		if dt.Kind == KindFineGrained {
			dt.Permissions = map[string]string{}
		}
	}
	if len(dt.Scopes) == 0 {
		dt.Scopes = nil
		if dt.Kind == KindClassic {
			dt.Scopes = []string{}
		}
	}
}

func timeString(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// Export reads the whole store as a dump: tokens by hash (the store has no
// raw token), grants as their current state.
func (db *DB) Export(ctx context.Context) (*Dump, error) {
	d := &Dump{Users: []DumpUser{}, Memberships: []DumpMembership{}, Repositories: []DumpRepository{}, Tokens: []DumpToken{}, Grants: []DumpGrant{}}
	hashes := map[int64]string{}
	names := map[int64]Token{}
	var grants []Grant
	_, err := db.Load(ctx, Visitor{
		User: func(u User) error {
			du := DumpUser{Login: u.Login, ManagedBy: Null()}
			if u.ManagedBy != "" {
				du.ManagedBy = NonNull(u.ManagedBy)
			}
			d.Users = append(d.Users, du)
			return nil
		},
		Membership: func(m Membership) error { d.Memberships = append(d.Memberships, DumpMembership(m)); return nil },
		Repository: func(r Repository) error { d.Repositories = append(d.Repositories, DumpRepository(r)); return nil },
		Token: func(t Token) error {
			h := hex.EncodeToString(t.Hash[:])
			hashes[t.ID] = h
			names[t.ID] = Token{Name: t.Name, User: t.User}
			d.Tokens = append(d.Tokens, DumpToken{
				TokenSHA256: h, Name: t.Name, Kind: t.Kind, User: t.User, ResourceOwner: t.ResourceOwner,
				RepositorySelection: t.RepositorySelection, Repositories: t.Repositories, Permissions: t.Permissions, Scopes: t.Scopes,
				CreatedAt: timeString(t.CreatedAt), ExpiresAt: nullable(timeString(t.ExpiresAt)), Revoked: &t.Revoked, LastUsedAt: timeString(t.LastUsedAt),
			})
			exportReach(&d.Tokens[len(d.Tokens)-1])
			return nil
		},
		Grant: func(g Grant) error { grants = append(grants, g); return nil },
	})
	if err != nil {
		return nil, err
	}
	// A reviewed grant's Reason is the reviewer's; the requester's
	// justification goes beside it. A request's justification never changes
	// once written, so reading it after the snapshot is consistent.
	type texts struct{ justification, review string }
	requests := map[int64]texts{}
	err = each(ctx, db.rdb, `SELECT id, justification, review_reason FROM requests WHERE justification <> '' OR review_reason <> ''`, func(rows *sql.Rows) error {
		var id int64
		var t texts
		if err := rows.Scan(&id, &t.justification, &t.review); err != nil {
			return err
		}
		requests[id] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the requests' reasons: %w", err)
	}
	for _, g := range grants {
		dg := DumpGrant{TokenSHA256: hashes[g.TokenID], TokenName: names[g.TokenID].Name, User: names[g.TokenID].User,
			Org: g.Org, State: g.State, Reason: g.Reason, Reviewer: g.Reviewer}
		if t, ok := requests[g.ID]; ok && g.State != GrantPending {
			dg.Reason, dg.Justification = t.review, t.justification
		}
		d.Grants = append(d.Grants, dg)
	}
	return d, nil
}

// checkSpellings refuses a login that the store, or the file before it,
// already spells in another case: GitHub compares logins without regard to
// case, and so do the policy's index and the CLI and admin API (Spelling),
// but the store's own lookups compare them exactly, so "dave" beside "Dave"
// would be two users for some lookups and one for others. A spelling the
// store already has stays importable, so a store that holds two (from
// before this check) can still be exported and imported again.
//
// It asks the store about the file's names only, all of them in one
// statement (a JSON array), in Spelling's two steps (read.go), each answer
// from an index entry: which of the names, and of their lower-case forms,
// the store holds as given (spellingsHeld); then, for a lower-case form it
// does not hold, its first spelling in byte order (spellingsFirst), which
// is then the store's spelling of the name, as Spelling's. The usual file,
// in lower case and mostly known, needs the first step only. Like
// Spelling, it finds a spelling held as given in users, memberships,
// repositories, tokens and requests, and one in another case in the first
// four, which migration 3 indexes by lower case: a request's organization
// is its token's resource owner (rule 6), which tokens hold.
//
// names calls its function with every name to check, in order, and the
// field that holds it (dumpNames for a file); where says where an earlier
// spelling may be, for the refusal. A nil tx is an empty store: only the
// names compare with one another (MigrateStore, whose target is empty when
// it copies).
func checkSpellings(ctx context.Context, tx *sql.Tx, dia dialect, names func(nameFunc) error, where string) error {
	var asked []string
	listed := map[string]bool{}
	ask := func(name string) {
		if name != "" && !listed[name] {
			listed[name] = true
			asked = append(asked, name)
		}
	}
	err := names(func(name string, _ func() string) error {
		ask(name)
		ask(strings.ToLower(name)) // when the store holds it, the store's spelling
		return nil
	})
	if err != nil {
		return err
	}
	if tx == nil {
		asked = nil // an empty store holds none of them
	}
	exact := map[string]bool{} // the names the store, or the file so far, holds as given
	err = askNames(ctx, tx, dia.spellingsHeld, asked, func(rows *sql.Rows) error {
		var name string
		err := rows.Scan(&name)
		exact[name] = true
		return err
	})
	if err != nil {
		return err
	}
	folded := map[string]string{} // lower case -> the store's spelling, or the file's first
	var unheld []string
	for _, name := range asked {
		if lower := strings.ToLower(name); name != lower {
			continue
		} else if exact[lower] {
			folded[lower] = lower
		} else {
			unheld = append(unheld, lower)
		}
	}
	err = askNames(ctx, tx, dia.spellingsFirst, unheld, func(rows *sql.Rows) error {
		var lower string
		var found [4]sql.NullString
		if err := rows.Scan(&lower, &found[0], &found[1], &found[2], &found[3]); err != nil {
			return err
		}
		for _, f := range found {
			if f.Valid && (folded[lower] == "" || f.String < folded[lower]) {
				folded[lower] = f.String
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return names(func(name string, field func() string) error {
		if name == "" {
			return nil
		}
		if !exact[name] {
			if other, ok := folded[strings.ToLower(name)]; ok {
				return fmt.Errorf("%s: %q is spelt %q %s; logins are compared without regard to case: write %q", field(), name, other, where, other)
			}
		}
		exact[name] = true
		if _, ok := folded[strings.ToLower(name)]; !ok {
			folded[strings.ToLower(name)] = name
		}
		return nil
	})
}

// askNames runs stmt (spellingsHeld or spellingsFirst) with names, as the
// JSON array its table names reads, and calls fn for every row.
func askNames(ctx context.Context, tx *sql.Tx, stmt string, names []string, fn func(*sql.Rows) error) error {
	if len(names) == 0 {
		return nil
	}
	list, err := json.Marshal(names)
	if err != nil {
		return err
	}
	if err := each(ctx, tx, stmt, fn, string(list)); err != nil {
		return fmt.Errorf("reading the store's spellings: %w", err)
	}
	return nil
}

// spellingsHeld selects the names the store holds as given: Spelling's
// spellingHeld, and spellingFirst's first column, for many names at once.
// {{NAMES}} is the table of the strings of the JSON array $1 (dialect):
// one statement for any number of names, whose text, unlike a list of
// placeholders, SQLite parses in the same time for every import. Scalar
// subqueries, which COALESCE evaluates in turn until one finds the name
// (the usual name is a known user's, found by the first), and which
// PostgreSQL never runs as a hashed subplan built from a whole table.
const spellingsHeld = `WITH names (name, folded) AS (SELECT value, lower(value) FROM {{NAMES}})
SELECT n.name FROM names n WHERE COALESCE(
	(SELECT 1 FROM users WHERE login = n.name),
	(SELECT 1 FROM memberships WHERE lower(org) = n.folded AND org{{BINARY}} = n.name LIMIT 1),
	(SELECT 1 FROM repositories WHERE owner = n.name LIMIT 1),
	(SELECT 1 FROM tokens WHERE lower(resource_owner) = n.folded AND resource_owner{{BINARY}} = n.name LIMIT 1),
	(SELECT 1 FROM requests WHERE org = n.name LIMIT 1)) IS NOT NULL`

// spellingsFirst selects, for each name of $1 (in lower case), the first
// spelling in byte order of each table that a lower-case index covers
// (NULL when none): spellingFirst's other columns for many names at once,
// each from one index entry however many rows share the name.
const spellingsFirst = `WITH names (name) AS (SELECT value FROM {{NAMES}})
SELECT n.name,
	(SELECT login FROM users WHERE lower(login) = n.name ORDER BY login{{BINARY}} LIMIT 1),
	(SELECT org FROM memberships WHERE lower(org) = n.name ORDER BY org{{BINARY}} LIMIT 1),
	(SELECT owner FROM repositories WHERE lower(owner) = n.name ORDER BY owner{{BINARY}} LIMIT 1),
	(SELECT resource_owner FROM tokens WHERE lower(resource_owner) = n.name ORDER BY resource_owner{{BINARY}} LIMIT 1)
FROM names n`

// nameFunc is called with a name and the field that holds it (a function,
// so that the field is only written for a refusal).
type nameFunc = func(name string, field func() string) error

// dumpNames calls fn with every login a dump holds that checkSpellings
// compares (users, members and organizations, owners, tokens' users and
// resource owners, grants' organizations), in the file's order, with the
// field that holds it, until fn returns an error.
func dumpNames(d *Dump, fn nameFunc) error {
	at := func(format string, i int) func() string { return func() string { return fmt.Sprintf(format, i) } }
	for i, u := range d.Users {
		if err := fn(u.Login, at("users[%d].login", i)); err != nil {
			return err
		}
	}
	for i, m := range d.Memberships {
		if err := cmp.Or(fn(m.User, at("memberships[%d].user", i)), fn(m.Org, at("memberships[%d].org", i))); err != nil {
			return err
		}
	}
	for i, r := range d.Repositories {
		if err := fn(r.Owner, at("repositories[%d].owner", i)); err != nil {
			return err
		}
	}
	for i, t := range d.Tokens {
		if err := cmp.Or(fn(t.User, at("tokens[%d].user", i)), fn(t.ResourceOwner, at("tokens[%d].resource_owner", i))); err != nil {
			return err
		}
	}
	for i, g := range d.Grants {
		if err := fn(g.Org, at("grants[%d].org", i)); err != nil {
			return err
		}
	}
	return nil
}
