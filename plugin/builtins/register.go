package builtins

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/opa-pat/opa-pat/plugin/index"
	"github.com/opa-pat/opa-pat/plugin/lastused"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// errNotReady is returned while no token index is installed; OPA then leaves
// the call undefined and the policy denies.
var errNotReady = errors.New("pat: token store not ready")

// Source is what the built-ins answer from: an index and the token prefixes
// of the deployment.
type Source struct {
	Index    *index.Index
	Prefixes token.Prefixes

	// settingsErr is set while data.pat.settings are invalid: pat.token
	// fails with it (undefined: the policy denies) rather than let
	// decisions read broken settings as the defaults.
	settingsErr atomic.Pointer[error]
}

// SettingsError is the error pat.token fails with while data.pat.settings
// are invalid, nil otherwise. Other deciders that read the settings (the
// admin API) refuse to decide meanwhile, too.
func (s *Source) SettingsError() error {
	if err := s.settingsErr.Load(); err != nil {
		return *err
	}
	return nil
}

// SetSettingsError makes pat.token fail with err (nil: answer again).
func (s *Source) SetSettingsError(err error) {
	if err == nil {
		s.settingsErr.Store(nil)
		return
	}
	s.settingsErr.Store(&err)
}

// current is the installed source. Built-ins are registered once per
// process, so the pat plugin installs its index here when it starts.
var current atomic.Pointer[Source]

// Install makes the built-ins answer from s and returns a function that
// uninstalls it again (unless another source was installed since).
func Install(s *Source) (uninstall func()) {
	current.Store(s)
	return func() { current.CompareAndSwap(s, nil) }
}

// Installed returns the source the built-ins answer from, or nil.
func Installed() *Source { return current.Load() }

// Current reports whether the built-ins answer at now, as pat.token checks
// before a lookup: a source is installed, its settings are valid and its
// index caught up with the store within store.max_staleness. The Envoy gate
// uses no cached decision while it is false (extauthz.WithCurrent).
func Current(now time.Time) bool {
	src := current.Load()
	return src != nil && src.settingsErr.Load() == nil && src.Index.Current(now) == nil
}

func init() {
	rego.RegisterBuiltin1(TokenDecl, Token)
	rego.RegisterBuiltin2(GrantDecl, Grant)
	rego.RegisterBuiltin2(OrgRoleDecl, OrgRole)
	rego.RegisterBuiltin1(UserDecl, User)
	rego.RegisterBuiltin2(RepositoryDecl, Repository)
	rego.RegisterBuiltinDyn(PrefixesDecl, func(rego.BuiltinContext, []*ast.Term) (*ast.Term, error) { return TokenPrefixes(), nil })
}

// Keys and fixed values, built once.
var (
	keyWellFormed    = ast.InternedTerm("well_formed")
	keyFound         = ast.InternedTerm("found")
	keyKind          = ast.InternedTerm("kind")
	keyID            = ast.InternedTerm("id")
	keyUser          = ast.InternedTerm("user")
	keyName          = ast.InternedTerm("name")
	keyCreated       = ast.InternedTerm("created_at_ns")
	keyExpires       = ast.InternedTerm("expires_at_ns")
	keyRevoked       = ast.InternedTerm("revoked")
	keyScopes        = ast.InternedTerm("scopes")
	keyResourceOwner = ast.InternedTerm("resource_owner")
	keySelection     = ast.InternedTerm("repository_selection")
	keyRepositories  = ast.InternedTerm("repositories")
	keyPermissions   = ast.InternedTerm("permissions")
	keyState         = ast.InternedTerm("state")
	keyReason        = ast.InternedTerm("reason")
	keyReviewer      = ast.InternedTerm("reviewer")
	keyUpdated       = ast.InternedTerm("updated_at_ns")

	malformed = ast.ObjectTerm([2]*ast.Term{keyWellFormed, ast.InternedTerm(false)})
	unknown   = map[string]*ast.Term{
		token.KindClassic:     notFound(token.KindClassic),
		token.KindFineGrained: notFound(token.KindFineGrained),
	}
)

func notFound(kind string) *ast.Term {
	return ast.ObjectTerm(
		[2]*ast.Term{keyWellFormed, ast.InternedTerm(true)},
		[2]*ast.Term{keyKind, ast.StringTerm(kind)},
		[2]*ast.Term{keyFound, ast.InternedTerm(false)},
	)
}

// Token implements pat.token(raw): the format is checked before any lookup,
// the token is hashed once and looked up by its SHA-256.
func Token(_ rego.BuiltinContext, raw *ast.Term) (*ast.Term, error) {
	src := current.Load()
	if src == nil {
		return nil, errNotReady
	}
	s, err := stringArg(raw, "token")
	if err != nil {
		return nil, err
	}
	kind, ok := token.Parse(s, src.Prefixes)
	if !ok {
		return malformed, nil
	}
	if err := src.settingsErr.Load(); err != nil {
		return nil, *err // fail closed, as for a stale index
	}
	if err := src.Index.Current(time.Now()); err != nil {
		return nil, err // fail closed: undefined, and the policy denies
	}
	h := token.Hash(s)
	t, ok := src.Index.Token(h)
	if !ok {
		return unknown[kind], nil
	}
	lastused.Mark(t.ID) // token_last_used_at, batched off the decision path (plugin/lastused; admin API)
	return cachedTokenTerm(h, t), nil
}

var (
	tokenAnswers answerCache[index.Token] // by the index's Token: every value of the answer
	grantAnswers answerCache[index.Grant] // by the index's Grant: every value of the answer
	userAnswers  answerCache[index.User]  // by the index's User: every value of the answer
)

// cachedTokenTerm is TokenTerm through tokenAnswers; bits of the token's
// hash choose its two slots.
func cachedTokenTerm(h [32]byte, t index.Token) *ast.Term {
	return tokenAnswers.get(uint32(h[2])|uint32(h[3])<<8, uint32(h[4])|uint32(h[5])<<8, t, uint64(t.ID), TokenTerm)
}

// TokenTerm is the found shape of pat.token for an indexed token.
func TokenTerm(t index.Token) *ast.Term {
	sh := t.Shape
	expires := ast.InternedNullTerm
	if t.ExpiresNs != 0 {
		expires = int64Term(t.ExpiresNs)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyWellFormed, ast.InternedTerm(true)},
		[2]*ast.Term{keyFound, ast.InternedTerm(true)},
		[2]*ast.Term{keyKind, sh.KindTerm},
		[2]*ast.Term{keyID, int64Term(t.ID)},
		[2]*ast.Term{keyUser, t.User.Term},
		[2]*ast.Term{keyName, ast.StringTerm(t.Name)},
		[2]*ast.Term{keyCreated, int64Term(t.CreatedNs)},
		[2]*ast.Term{keyExpires, expires},
		[2]*ast.Term{keyRevoked, ast.InternedTerm(sh.Revoked)},
		[2]*ast.Term{keyScopes, sh.Scopes.Term},
		[2]*ast.Term{keyResourceOwner, sh.ResourceOwner.Term},
		[2]*ast.Term{keySelection, sh.RepositorySelection.Term},
		[2]*ast.Term{keyRepositories, sh.Repositories.Term},
		[2]*ast.Term{keyPermissions, sh.PermissionsTerm},
	)
}

// Grant implements pat.grant(token_id, org).
func Grant(_ rego.BuiltinContext, id, org *ast.Term) (*ast.Term, error) {
	src := current.Load()
	if src == nil {
		return nil, errNotReady
	}
	n, ok := id.Value.(ast.Number)
	if !ok {
		return nil, fmt.Errorf("%s: token_id: want a number, got %s", GrantName, ast.ValueName(id.Value))
	}
	tokenID, ok := n.Int64()
	if !ok {
		return nil, fmt.Errorf("%s: token_id: %s is not an integer", GrantName, n)
	}
	o, err := stringArg(org, "org")
	if err != nil {
		return nil, err
	}
	g, ok := src.Index.Grant(tokenID, o)
	if !ok {
		return nil, nil // undefined: no grant
	}
	owner := uint64(tokenID)*0x9e3779b97f4a7c15 ^ maphash.String(nameSeed, o)
	return grantAnswers.get(uint32(owner), uint32(owner>>32), g, owner, grantTerm), nil
}

// nameSeed hashes organization names and logins for the answer caches.
var nameSeed = maphash.MakeSeed()

// grantTerm is the answer of pat.grant for an indexed grant.
func grantTerm(g index.Grant) *ast.Term {
	reviewer := ast.InternedNullTerm
	if g.Reviewer != nil {
		reviewer = g.Reviewer.Term
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyID, int64Term(g.ID)},
		[2]*ast.Term{keyState, g.State.Term},
		[2]*ast.Term{keyReason, ast.StringTerm(g.Reason)},
		[2]*ast.Term{keyReviewer, reviewer},
		[2]*ast.Term{keyUpdated, int64Term(g.UpdatedAtNs)},
	)
}

// OrgRole implements pat.org_role(user, org).
func OrgRole(_ rego.BuiltinContext, user, org *ast.Term) (*ast.Term, error) {
	src := current.Load()
	if src == nil {
		return nil, errNotReady
	}
	u, err := stringArg(user, "user")
	if err != nil {
		return nil, err
	}
	o, err := stringArg(org, "org")
	if err != nil {
		return nil, err
	}
	role, ok := src.Index.Role(u, o)
	if !ok {
		return nil, nil
	}
	return role.Term, nil
}

// User implements pat.user(login).
func User(_ rego.BuiltinContext, login *ast.Term) (*ast.Term, error) {
	src := current.Load()
	if src == nil {
		return nil, errNotReady
	}
	l, err := stringArg(login, "login")
	if err != nil {
		return nil, err
	}
	u, ok := src.Index.User(l)
	if !ok {
		return nil, nil
	}
	owner := maphash.String(nameSeed, u.Login)
	return userAnswers.get(uint32(owner), uint32(owner>>32), u, owner, index.User.Term), nil
}

// Repository implements pat.repository(owner, name).
func Repository(_ rego.BuiltinContext, owner, name *ast.Term) (*ast.Term, error) {
	src := current.Load()
	if src == nil {
		return nil, errNotReady
	}
	o, err := stringArg(owner, "owner")
	if err != nil {
		return nil, err
	}
	n, err := stringArg(name, "name")
	if err != nil {
		return nil, err
	}
	r, ok := src.Index.Repository(o, n)
	if !ok {
		return nil, nil
	}
	return r.Term(), nil
}

// TokenPrefixes implements pat.token_prefixes(): token.KnownPrefixes as a
// set. It answers whether or not the plugin runs (the decision-log mask calls
// it, and the plugin keeps a copy of the mask before a bundle brings one);
// the set is built again only when the noted prefixes change.
func TokenPrefixes() *ast.Term {
	noted := token.NotedPrefixes()
	if a := prefixesAnswer.Load(); a != nil && slices.Equal(a.noted, noted) {
		return a.term
	}
	list := token.KnownPrefixes()
	terms := make([]*ast.Term, len(list))
	for i, p := range list {
		terms[i] = ast.StringTerm(p)
	}
	a := &prefixesEntry{noted: noted, term: ast.SetTerm(terms...)}
	prefixesAnswer.Store(a)
	return a.term
}

type prefixesEntry struct {
	noted []string
	term  *ast.Term
}

var prefixesAnswer atomic.Pointer[prefixesEntry]

func stringArg(t *ast.Term, name string) (string, error) {
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %s", name, ast.ValueName(t.Value))
	}
	return string(s), nil
}

func int64Term(n int64) *ast.Term {
	if n >= 0 && n <= 512 {
		return ast.InternedTerm(int(n))
	}
	return ast.NumberTerm(json.Number(strconv.FormatInt(n, 10)))
}
