// Package issue creates personal access tokens: it asks the policy's
// creation check (data.pat.creation, SEMANTICS.md rules 10, 21 and 29)
// whether a token may be created and which grant it starts with, then
// generates the raw token and stores its hash, grant and audit events in one
// transaction. The CLI and the admin API share it.
package issue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/bundle"
	_ "github.com/opa-pat/opa-pat/plugin/builtins" // declares the pat.* built-ins the policy compiles against
	"github.com/opa-pat/opa-pat/plugin/irvm"
	"github.com/opa-pat/opa-pat/plugin/permissions"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
	patrego "github.com/opa-pat/opa-pat/rego"
)

// Query is the creation check's entrypoint.
const Query = "data.pat.creation"

// DefaultLifetime is the expiry of a token created without one: GitHub's
// default of 30 days.
const DefaultLifetime = 30 * 24 * time.Hour

// Checker evaluates the creation check against one settings document. It is
// safe for concurrent use.
type Checker struct {
	pq rego.PreparedEvalQuery
}

// NewChecker compiles the embedded policy with settings as
// data.pat.settings; nil settings mean all defaults.
func NewChecker(ctx context.Context, settings map[string]any) (*Checker, error) {
	pq, err := prepare(ctx, settings, Query)
	if err != nil {
		return nil, fmt.Errorf("compiling the creation check: %w", err)
	}
	return &Checker{pq: pq}, nil
}

// prepare compiles query over the embedded policy with settings as
// data.pat.settings; nil settings mean all defaults.
func prepare(ctx context.Context, settings map[string]any, query string) (rego.PreparedEvalQuery, error) {
	mods, err := patrego.Modules()
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("reading the embedded policy: %w", err)
	}
	if settings == nil {
		settings = map[string]any{}
	}
	store := inmem.NewFromObject(map[string]any{"pat": map[string]any{"settings": settings}})
	opts := []func(*rego.Rego){
		rego.Query(query),
		rego.Store(store),
		// A store of its own: the target says so explicitly, also in a
		// sidecar whose default evaluator reads the sidecar's store.
		rego.Target(irvm.Name),
	}
	for path, src := range mods {
		opts = append(opts, rego.Module(path, src))
	}
	return rego.New(opts...).PrepareForEval(irvm.WithStore(ctx, store))
}

// ApprovalQuery is the effective approval policy of input.org, "require"
// or "disable" (SEMANTICS.md rule 18, the enterprise's choice over the
// organization's): the admin API's plugin/admin.ApprovalQuery.
const ApprovalQuery = "data.pat.admin.approval.value"

// ApprovalDisabled reports whether approval of fine-grained tokens is
// effectively disabled in org under settings (nil: all defaults, where it
// is required), as the embedded policy decides it: the CLI's view of what
// a sidecar with these settings decides (rule 20).
func ApprovalDisabled(ctx context.Context, settings map[string]any, org string) (bool, error) {
	pq, err := prepare(ctx, settings, ApprovalQuery)
	if err != nil {
		return false, fmt.Errorf("compiling %s: %w", ApprovalQuery, err)
	}
	rs, err := pq.Eval(ctx, rego.EvalInput(map[string]any{"org": org}))
	if err != nil {
		return false, fmt.Errorf("evaluating %s: %w", ApprovalQuery, err)
	}
	return len(rs) == 1 && len(rs[0].Expressions) == 1 && rs[0].Expressions[0].Value == "disable", nil
}

// ParseSettings decodes a settings document (data.pat.settings) and
// validates it as a bundle's settings are (bundle.ParseSettings): a value
// of the wrong type or out of range is refused here with its path, rather
// than garbling the creation check's message later.
func ParseSettings(b []byte) (map[string]any, error) {
	return bundle.ParseSettings(b)
}

// StoreSettings returns the settings a running sidecar recorded in the store,
// or nil (all defaults) when none were recorded.
func StoreSettings(ctx context.Context, db *store.DB) (map[string]any, error) {
	b, err := db.Settings(ctx)
	if err != nil || b == nil {
		return nil, err
	}
	s, err := ParseSettings(b)
	if err != nil {
		return nil, fmt.Errorf("the store's recorded %w", err)
	}
	return s, nil
}

// Input is the creation check's input.
type Input struct {
	Token     InputToken `json:"token"`
	Role      string     `json:"role,omitempty"`
	ManagedBy string     `json:"managed_by,omitempty"` // the creator's enterprise, for a managed user (rule 27)
	// Creator is the token that asks for the new one (the admin API),
	// which the new one may not outlive or reach beyond; nil for the CLI.
	Creator *InputCreator `json:"creator,omitempty"`
}

// InputCreator describes the token that creates a token: its scopes bound
// what the new one may reach, its expiry how long it may live, and its kind
// and times let the policy ask whether the new token's organization lets the
// creator itself through (org_policy_denials: access, lifetime).
type InputCreator struct {
	Kind        string   `json:"kind"`
	Scopes      []string `json:"scopes"`
	CreatedAtNS int64    `json:"created_at_ns"`
	ExpiresAtNS *int64   `json:"expires_at_ns"`
}

// InputToken describes the token to create.
type InputToken struct {
	Kind                string `json:"kind"`
	User                string `json:"user"`
	ResourceOwner       string `json:"resource_owner"`
	RepositorySelection string `json:"repository_selection"`
	// Scopes of a classic token: a token that creates one must hold them.
	Scopes []string `json:"scopes,omitempty"`
	// Permissions decide whether a token limited to public repositories
	// needs a grant: one holding more than metadata: read does (rule 21).
	Permissions map[string]string `json:"permissions,omitempty"`
	CreatedAtNS int64             `json:"created_at_ns"`
	ExpiresAtNS *int64            `json:"expires_at_ns"`
}

// Decision is the creation check's answer.
type Decision struct {
	Allowed    bool     `json:"allowed"`
	Errors     []string `json:"errors"`
	GrantState *string  `json:"grant_state"`
	LimitDays  *int     `json:"limit_days"`
}

// Check evaluates the creation check.
func (c *Checker) Check(ctx context.Context, in Input) (Decision, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return Decision{}, err
	}
	var input map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&input); err != nil {
		return Decision{}, err
	}
	rs, err := c.pq.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluating %s: %w", Query, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, fmt.Errorf("evaluating %s: undefined", Query)
	}
	out, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return Decision{}, err
	}
	var d Decision
	dec = json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Decision{}, fmt.Errorf("%s: unexpected answer %s: %w", Query, out, err)
	}
	if d.GrantState != nil && *d.GrantState != store.GrantApproved && *d.GrantState != store.GrantPending {
		return Decision{}, fmt.Errorf("%s: unexpected grant_state %q", Query, *d.GrantState)
	}
	return d, nil
}

// Refused is the error of a creation the policy does not allow.
type Refused struct {
	Errors []string
}

func (e *Refused) Error() string {
	return "token creation refused: " + strings.Join(e.Errors, "; ")
}

// Request asks for a new token.
type Request struct {
	Kind string
	User string
	Name string
	// Classic tokens.
	Scopes []string
	// Fine-grained tokens. ResourceOwner defaults to User and
	// RepositorySelection to "public" (GitHub's default).
	ResourceOwner       string
	RepositorySelection string
	Repositories        []string
	Permissions         map[string]string
	// ExpiresIn is the lifetime; 0 means DefaultLifetime. NoExpiry makes a
	// token that never expires.
	ExpiresIn time.Duration
	NoExpiry  bool
	// Reason is the justification kept with an approval request.
	Reason string
	// Actor is who creates the token; empty means User.
	Actor string
	// Creator is the token that creates this one (the admin API's
	// caller): the new token may not outlive it or reach beyond it. Nil
	// for the operator's CLI.
	Creator *store.Token
}

// Result is a created token.
type Result struct {
	// Raw is the raw token: shown once, never stored.
	Raw      string
	Token    store.Token
	Grant    *store.Grant
	Decision Decision
}

// notAnotherUser refuses owner as a token's resource owner when the store
// knows it as a user and not as an organization.
func notAnotherUser(ctx context.Context, db *store.DB, owner, user string) error {
	_, isUser, err := db.User(ctx, owner)
	if err != nil || !isUser {
		return err
	}
	isOrg, err := db.OrgKnown(ctx, owner)
	if err != nil || isOrg {
		return err
	}
	return fmt.Errorf("resource_owner: %s is a user, not an organization; a fine-grained token's resource owner is its own user (%s) or an organization", owner, user)
}

// Issue creates a token if the creation check allows it. now is the
// creation time.
func Issue(ctx context.Context, db *store.DB, c *Checker, req Request, now time.Time) (Result, error) {
	now = now.UTC()
	// A raw token given as a name (a classic mistake) is refused before
	// names are lower-cased: the checksum that tells a token whatever its
	// prefix does not survive lower case, and the store checks the names it
	// writes, which are. The store checks the rest.
	if err := checkNames(req); err != nil {
		return Result{}, err
	}
	if err := checkVocabulary(req); err != nil {
		return Result{}, err
	}
	// A name is one line of text, shown in lists, tables and audit events:
	// a line feed or a terminal's control character in it would forge or
	// garble what the next line says. (The store keeps the names it has;
	// a new one is refused.)
	if i := strings.IndexFunc(req.Name, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(req.Name[i:])
		return Result{}, fmt.Errorf("name: %s holds a control character (U+%04X); a name is one line of text without them", token.Quote(req.Name), r)
	}
	// GitHub compares logins without regard to case: "EMU" is the managed
	// user emu, with emu's memberships and lifetime limits, not a new user.
	// Names are written as the store spells them (lower case unless an
	// import kept another), repositories in lower case.
	user, err := db.Spelling(ctx, req.User)
	if err != nil {
		return Result{}, err
	}
	owner := req.ResourceOwner
	if owner != "" {
		if owner, err = db.Spelling(ctx, owner); err != nil {
			return Result{}, err
		}
	}
	// A fine-grained token reaches its user's resources or an
	// organization's (rule 6): another user is no resource owner. The
	// policy, which knows roles only, would call it "not a member".
	if req.Kind == store.KindFineGrained && owner != "" && !strings.EqualFold(owner, user) {
		if err := notAnotherUser(ctx, db, owner, user); err != nil {
			return Result{}, err
		}
	}
	var repos []string
	for _, r := range req.Repositories {
		repos = append(repos, strings.ToLower(r))
	}
	t := store.Token{
		Name: req.Name, Kind: req.Kind, User: user, Scopes: req.Scopes, ResourceOwner: owner,
		RepositorySelection: req.RepositorySelection, Repositories: repos, Permissions: req.Permissions, CreatedAt: now,
	}
	switch {
	case req.NoExpiry && req.ExpiresIn != 0:
		return Result{}, errors.New("expires_in: give an expiry or no expiry, not both")
	case req.ExpiresIn < 0:
		return Result{}, fmt.Errorf("expires_in: %s is not a positive duration", req.ExpiresIn)
	case req.NoExpiry:
	case req.ExpiresIn == 0:
		t.ExpiresAt = now.Add(DefaultLifetime)
		// The default does not outlive the token that asks for the new
		// one (the creation check refuses an expiry given beyond it).
		if c := req.Creator; c != nil && !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(t.ExpiresAt) {
			t.ExpiresAt = c.ExpiresAt
		}
	default:
		t.ExpiresAt = now.Add(req.ExpiresIn)
	}
	if t.Kind == store.KindFineGrained {
		if t.RepositorySelection == "selected" && len(t.Repositories) == 0 {
			return Result{}, errors.New("repositories: a token for selected repositories names at least one, as on GitHub")
		}
		if t.ResourceOwner == "" {
			t.ResourceOwner = t.User
		}
		selection := t.RepositorySelection
		if selection == "" {
			t.RepositorySelection = "public"
			selection = `"public" (the default)`
		} else {
			selection = strconv.Quote(selection)
		}
		// A list kept beside "all" or "public" would be shown with the
		// token and mean nothing (the CLI's --repositories excludes
		// --all-repositories and --public-repositories for the same
		// reason). Another selection is the store's to refuse, unquoted.
		if (t.RepositorySelection == "all" || t.RepositorySelection == "public") && len(t.Repositories) > 0 {
			return Result{}, fmt.Errorf(`repositories: only a token for "selected" repositories names them; this one is for %s repositories`, selection)
		}
		// An earlier opa-pat name of a permission (variables) is stored as
		// GitHub's (actions_variables), and GitHub's second spelling of one
		// (emails) as the REST API's (email_addresses): the names the
		// policy asks for.
		perms := make(map[string]string, len(t.Permissions)+1)
		for k, v := range t.Permissions {
			perms[permissions.Canonical(k)] = v
		}
		if _, ok := perms["metadata"]; !ok {
			perms["metadata"] = "read" // always present (SEMANTICS.md rule 8)
		}
		t.Permissions = perms
	}
	if t.Scopes != nil {
		t.Scopes = slices.Compact(slices.Sorted(slices.Values(t.Scopes)))
	}
	prefixes, err := db.Prefixes(ctx)
	if err != nil {
		return Result{}, err
	}
	raw, err := token.Generate(t.Kind, prefixes)
	if err != nil {
		return Result{}, err
	}
	t.Hash = token.Hash(raw)
	if err := store.ValidateToken(t); err != nil {
		return Result{}, err
	}

	in := Input{Token: InputToken{Kind: t.Kind, User: t.User, ResourceOwner: t.ResourceOwner, RepositorySelection: t.RepositorySelection,
		Scopes: t.Scopes, Permissions: t.Permissions, CreatedAtNS: t.CreatedAt.UnixNano()}}
	if !t.ExpiresAt.IsZero() {
		ns := t.ExpiresAt.UnixNano()
		in.Token.ExpiresAtNS = &ns
	}
	if t.ResourceOwner != "" {
		m, ok, err := db.Membership(ctx, t.User, t.ResourceOwner)
		if err != nil {
			return Result{}, err
		}
		if ok {
			in.Role = m.Role
		}
	}
	if c := req.Creator; c != nil {
		in.Creator = &InputCreator{Kind: c.Kind, Scopes: c.Scopes, CreatedAtNS: c.CreatedAt.UnixNano()}
		if in.Creator.Scopes == nil {
			in.Creator.Scopes = []string{}
		}
		if !c.ExpiresAt.IsZero() {
			ns := c.ExpiresAt.UnixNano()
			in.Creator.ExpiresAtNS = &ns
		}
	}
	u, ok, err := db.User(ctx, t.User)
	if err != nil {
		return Result{}, err
	}
	if ok {
		in.ManagedBy = u.ManagedBy
	}
	d, err := c.Check(ctx, in)
	if err != nil {
		return Result{}, err
	}
	if !d.Allowed {
		return Result{Decision: d}, &Refused{Errors: d.Errors}
	}
	p := store.CreateTokenParams{Token: t, Actor: req.Actor, Justification: req.Reason}
	if d.GrantState != nil {
		p.GrantState = *d.GrantState
		if p.GrantState == store.GrantApproved {
			p.ApprovalNote = "approved automatically at creation"
		}
	}
	created, grant, err := db.CreateToken(ctx, p)
	if err != nil {
		return Result{}, err
	}
	return Result{Raw: raw, Token: created, Grant: grant, Decision: d}, nil
}

// checkNames refuses a raw token among the names Issue lower-cases, and
// among the scopes it sorts (an error names a scope by its place as
// given).
func checkNames(req Request) error {
	for i, s := range req.Scopes {
		if err := store.CheckPlain(fmt.Sprintf("scopes[%d]", i), s); err != nil {
			return err
		}
	}
	if err := store.CheckPlain("user", req.User); err != nil {
		return err
	}
	if err := store.CheckPlain("resource_owner", req.ResourceOwner); err != nil {
		return err
	}
	for i, r := range req.Repositories {
		if err := store.CheckPlain(fmt.Sprintf("repositories[%d]", i), r); err != nil {
			return err
		}
	}
	return nil
}

// checkVocabulary refuses what GitHub has no name for (plugin/permissions):
// a classic scope it does not know (scopes[0]: unknown scope
// "bogus:scope"), a fine-grained permission it does not know
// (permissions.bogus_perm: unknown permission), an earlier opa-pat name of
// a permission beside GitHub's or one of GitHub's two spellings beside the
// other (permissions.Twice), and a level GitHub does not offer a
// permission at (metadata and the other read-only ones above read, the
// write-only ones at read). Such a token would hold what no request ever
// needs, or what GitHub would not make, so a typo would go unnoticed until
// the token fails. A name that holds a token is refused first, without it
// (store.CheckPlain), and a name of another shape is quoted after the
// field rather than put in it.
func checkVocabulary(req Request) error {
	switch req.Kind {
	case store.KindClassic:
		for i, s := range req.Scopes {
			if !permissions.Scope(s) {
				return fmt.Errorf("scopes[%d]: unknown scope %s", i, token.Quote(s))
			}
		}
	case store.KindFineGrained:
		for _, name := range slices.Sorted(maps.Keys(req.Permissions)) {
			if err := store.CheckPlain("permissions", name); err != nil {
				return err
			}
			if !permissions.Fine(name) {
				if permissionShape.MatchString(name) {
					return fmt.Errorf("permissions.%s: %s", name, permissions.Unknown(name))
				}
				return fmt.Errorf("permissions: unknown permission %s", token.Quote(name))
			}
			// An earlier opa-pat name is stored as GitHub's, and GitHub's
			// second spelling (emails) as the REST API's (Issue): given
			// beside that name, one of the two levels would be lost.
			if c := permissions.Canonical(name); c != name {
				if _, ok := req.Permissions[c]; ok {
					return fmt.Errorf("permissions.%s: %s", name, permissions.Twice(name))
				}
			}
			if why := permissions.Level(permissions.Canonical(name), req.Permissions[name]); why != "" {
				return fmt.Errorf("permissions.%s: %s", name, why)
			}
		}
	}
	return nil
}

// permissionShape is what a permission's name looks like: such a name may
// stand in a field's name (permissions.bogus_perm).
var permissionShape = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
