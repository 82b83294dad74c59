package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/issue"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func init() {
	subcommands = append(subcommands, newTokenCmd)
}

func newTokenCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke personal access tokens",
	}
	root.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return root
}

// tokenJSON is a token as the CLI prints it. Token (the raw token) is set
// only by "token create".
type tokenJSON struct {
	ID                  int64             `json:"id"`
	Token               string            `json:"token,omitempty"`
	TokenSHA256         string            `json:"token_sha256"`
	Name                string            `json:"name"`
	Kind                string            `json:"kind"`
	User                string            `json:"user"`
	ResourceOwner       string            `json:"resource_owner,omitempty"`
	RepositorySelection string            `json:"repository_selection,omitempty"`
	Repositories        []string          `json:"repositories,omitempty"`
	Permissions         map[string]string `json:"permissions,omitempty"`
	Scopes              []string          `json:"scopes,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	ExpiresAt           *time.Time        `json:"expires_at"`
	Revoked             bool              `json:"revoked"`
	LastUsedAt          *time.Time        `json:"last_used_at"`
	Request             *requestRef       `json:"request,omitempty"`
}

type requestRef struct {
	ID     int64  `json:"id"`
	Org    string `json:"org"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// timePtr is t for JSON output, in whole seconds as GitHub and the admin
// API show times; nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

func toTokenJSON(t store.Token) tokenJSON {
	return tokenJSON{
		ID: t.ID, TokenSHA256: hex.EncodeToString(t.Hash[:]), Name: t.Name, Kind: t.Kind, User: t.User,
		ResourceOwner: t.ResourceOwner, RepositorySelection: t.RepositorySelection, Repositories: t.Repositories,
		Permissions: t.Permissions, Scopes: t.Scopes, CreatedAt: t.CreatedAt.UTC().Truncate(time.Second), ExpiresAt: timePtr(t.ExpiresAt),
		Revoked: t.Revoked, LastUsedAt: timePtr(t.LastUsedAt),
	}
}

// parseLifetime reads 30d, 12h, 1d12h, 90m: whole days, then a Go duration.
// maxLifetimeDays bounds a lifetime in days well before its nanoseconds
// overflow (106,751 days); the store's own bound (2262) is checked when the
// token is stored.
const maxLifetimeDays = 100_000

func parseLifetime(s string) (time.Duration, error) {
	bad := fmt.Errorf("--expires-in: %s is not a duration such as 30d, 12h or 1d12h", token.Quote(s))
	var d time.Duration
	rest := s
	if days, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, bad
		}
		if n > maxLifetimeDays {
			return 0, fmt.Errorf("--expires-in: %s is longer than %d days; for a token that does not expire, give --no-expiry", token.Quote(s), maxLifetimeDays)
		}
		d, rest = time.Duration(n)*24*time.Hour, after
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		d += more
	}
	if d <= 0 {
		return 0, fmt.Errorf("--expires-in: %s must be positive", token.Quote(s))
	}
	return d, nil
}

// parsePermissions reads name=level pairs.
func parsePermissions(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--permission: %s is not name=level (e.g. contents=write)", token.Quote(p))
		}
		switch v {
		case "read", "write", "admin":
		default:
			return nil, fmt.Errorf("--permission: %s: level %s must be read, write or admin", token.Quote(p), token.Quote(v))
		}
		m[k] = v
	}
	return m, nil
}

// creationSettings picks the settings the creation check runs against:
// --settings FILE, else those a running sidecar recorded in the store, else
// none (all defaults), which defaulted reports: a store filled by an import
// and never served has none, and its organizations' limits would be checked
// as GitHub's defaults without a word.
func creationSettings(ctx context.Context, file string, db *store.DB) (settings map[string]any, defaulted bool, err error) {
	if file == "" {
		s, err := issue.StoreSettings(ctx, db)
		return s, err == nil && s == nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, false, fmt.Errorf("--settings: %w", err)
	}
	s, err := issue.ParseSettings(b)
	if err != nil {
		return nil, false, fmt.Errorf("--settings: %s: %w", file, err)
	}
	return s, false, nil
}

func newTokenCreateCmd() *cobra.Command {
	var (
		f                       storeFlags
		req                     issue.Request
		repos, perms            []string
		allRepos, publicRepos   bool
		expiresIn, settingsFile string
	)
	cmd := &cobra.Command{
		Use:   "create --store PATH --user U --kind classic|fine_grained [flags]",
		Short: "Create a token and print it, this once",
		Long: `Create a personal access token and print it once: the store keeps only its SHA-256.

Whether the token may be created, and whether a fine-grained token for an organization starts
approved or pending, is the policy's decision (data.pat.creation, SEMANTICS.md rules 10, 21 and
29), evaluated with the settings of --settings, else those a running sidecar recorded in the
store, else the defaults. Tokens expire after 30 days unless --expires-in or --no-expiry says
otherwise. A fine-grained token's resource owner defaults to its user and its repository
access to public repositories (read only), as on GitHub.

The default output is one JSON object with "id", "token" and, for a fine-grained token aimed at
an organization, "request" {"id", "state"}; --output text prints a summary instead.`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := f.check(); err != nil {
				return err
			}
			if req.User == "" {
				return errors.New("--user: give the token's user")
			}
			switch req.Kind {
			case store.KindClassic, store.KindFineGrained:
			case "":
				return errors.New("--kind: give classic or fine_grained")
			default:
				return fmt.Errorf("--kind: unknown kind %s, want classic or fine_grained", token.Quote(req.Kind))
			}
			if cmd.Flags().Changed("repositories") && len(repos) == 0 {
				return errors.New("--repositories: name at least one repository")
			}
			choices := 0
			for _, set := range []bool{len(repos) > 0, allRepos, publicRepos} {
				if set {
					choices++
				}
			}
			if choices > 1 {
				return errors.New("--repositories, --all-repositories and --public-repositories exclude each other")
			}
			var err error
			if req.Permissions, err = parsePermissions(perms); err != nil {
				return err
			}
			if req.Kind == store.KindClassic {
				if req.ResourceOwner != "" || choices > 0 || len(perms) > 0 {
					return errors.New("--resource-owner, --repositories, --all-repositories, --public-repositories and --permission are for fine-grained tokens")
				}
			} else {
				if len(req.Scopes) > 0 {
					return errors.New("--scope is for classic tokens; fine-grained tokens take --permission")
				}
				switch {
				case len(repos) > 0:
					req.RepositorySelection, req.Repositories = "selected", repos
				case allRepos:
					req.RepositorySelection = "all"
				case publicRepos:
					req.RepositorySelection = "public"
				}
			}
			if expiresIn != "" {
				if req.NoExpiry {
					return errors.New("--expires-in and --no-expiry exclude each other")
				}
				if req.ExpiresIn, err = parseLifetime(expiresIn); err != nil {
					return err
				}
			}
			req.Actor = f.actor

			return f.withStore(cmd.Context(), func(db *store.DB) error {
				settings, defaulted, err := creationSettings(cmd.Context(), settingsFile, db)
				if err != nil {
					return err
				}
				checker, err := issue.NewChecker(cmd.Context(), settings)
				if err != nil {
					return err
				}
				res, err := issue.Issue(cmd.Context(), db, checker, req, time.Now())
				if err != nil {
					return err
				}
				if defaulted {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s records no settings (no sidecar has served it, and none were recorded): "+
						"the creation was checked against the default settings; give --settings FILE, or record them with opa-pat store settings\n",
						store.RedactLocation(db.Location()))
				}
				out := toTokenJSON(res.Token)
				out.Token = res.Raw
				if g := res.Grant; g != nil {
					out.Request = &requestRef{ID: g.ID, Org: g.Org, State: g.State, Reason: g.Reason}
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				w := cmd.OutOrStdout()
				kind := "classic"
				if out.Kind == store.KindFineGrained {
					kind = "fine-grained"
				}
				expires := "never expires"
				if out.ExpiresAt != nil {
					expires = "expires " + out.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "created %s token %d %q for %s (%s)\n", kind, out.ID, out.Name, out.User, expires)
				if g := res.Grant; g != nil {
					fmt.Fprintf(w, "request %d for %s: %s\n", g.ID, g.Org, g.State)
				}
				fmt.Fprintln(w, "copy the token now, it will not be shown again:")
				_, err = fmt.Fprintln(w, res.Raw)
				return err
			})
		}),
	}
	f.register(cmd, outputJSON)
	fl := cmd.Flags()
	fl.StringVar(&req.User, "user", "", "the token's user")
	fl.StringVar(&req.Kind, "kind", "", "classic or fine_grained")
	fl.StringVar(&req.Name, "name", "", "the token's name")
	fl.StringVar(&req.ResourceOwner, "resource-owner", "", "fine-grained: the user or an organization (default: the user)")
	fl.StringSliceVar(&repos, "repositories", nil, "fine-grained: only these repositories of the resource owner (comma-separated or repeated)")
	fl.BoolVar(&allRepos, "all-repositories", false, "fine-grained: every repository of the resource owner")
	fl.BoolVar(&publicRepos, "public-repositories", false, "fine-grained: public repositories, read only (the default)")
	fl.StringSliceVar(&perms, "permission", nil, "fine-grained: name=read|write|admin (repeated or comma-separated)")
	fl.StringSliceVar(&req.Scopes, "scope", nil, "classic: a scope such as repo, public_repo, workflow (repeated or comma-separated)")
	fl.StringVar(&expiresIn, "expires-in", "", "lifetime such as 30d, 12h or 1d12h (default 30d)")
	fl.BoolVar(&req.NoExpiry, "no-expiry", false, "the token never expires")
	fl.StringVar(&req.Reason, "reason", "", "fine-grained: the justification of the approval request")
	fl.StringVar(&settingsFile, "settings", "", "settings JSON (data.pat.settings) to check creation against")
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var f storeFlags
	var filter store.TokenFilter
	var all bool
	cmd := &cobra.Command{
		Use:   "list --store PATH [--user U] [--resource-owner O] [--kind K] [--all]",
		Short: "List the live tokens, or with --all every token (never the raw tokens)",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			switch filter.Kind {
			case "", store.KindClassic, store.KindFineGrained:
			default:
				return fmt.Errorf("--kind: unknown kind %s, want classic or fine_grained", token.Quote(filter.Kind))
			}
			return f.withStoreRead(cmd, func(db *store.DB) error {
				if err := spell(cmd.Context(), db, &filter.User, &filter.ResourceOwner); err != nil {
					return err
				}
				filter.Live = !all
				tokens, err := db.ListTokens(cmd.Context(), filter)
				if err != nil {
					return err
				}
				if f.json() {
					out := make([]tokenJSON, len(tokens))
					for i, t := range tokens {
						out[i] = toTokenJSON(t)
					}
					return writeJSON(cmd.OutOrStdout(), out)
				}
				rows := make([][]string, len(tokens))
				now := time.Now()
				for i, t := range tokens {
					status := "active"
					switch {
					case t.Revoked:
						status = "revoked"
					case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now):
						status = "expired"
					}
					reach := strings.Join(t.Scopes, ",")
					if t.Kind == store.KindFineGrained {
						reach = t.ResourceOwner + ":" + t.RepositorySelection
						if t.RepositorySelection == "selected" {
							reach += "(" + strings.Join(t.Repositories, ",") + ")"
						}
					}
					rows[i] = []string{strconv.FormatInt(t.ID, 10), t.Kind, t.User, orDash(t.Name), orDash(reach),
						timeOrDash(t.ExpiresAt), timeOrDash(t.LastUsedAt), status}
				}
				if err := table(cmd.OutOrStdout(), []string{"ID", "KIND", "USER", "NAME", "REACH", "EXPIRES", "LAST USED", "STATUS"}, rows); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d %s\n", len(tokens), plural("token", len(tokens)))
				return err
			})
		}),
	}
	f.registerRead(cmd, outputText)
	cmd.Flags().StringVar(&filter.User, "user", "", "only this user's tokens")
	cmd.Flags().StringVar(&filter.ResourceOwner, "resource-owner", "", "only fine-grained tokens of this resource owner")
	cmd.Flags().StringVar(&filter.Kind, "kind", "", "only tokens of this kind: classic or fine_grained")
	cmd.Flags().BoolVar(&all, "all", false, "include revoked and expired tokens")
	return cmd
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// idHint says where the ids are, for an argument that may be a raw token.
var idHint = map[string]string{
	"token": "token ids are the numbers in the first column of opa-pat token list " +
		"(with --output json, token_sha256 is the SHA-256 of each raw token)",
	"request": "request ids are the numbers in the first column of opa-pat requests list " +
		"(--token ID lists a token's requests)",
}

// parseIDs reads decimal ids.
func parseIDs(what string, args []string) ([]int64, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("give at least one %s id", what)
	}
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			if mayBeToken(a) {
				return nil, fmt.Errorf("%s id %s: not a positive integer; %s", what, shownArg(a), idHint[what])
			}
			return nil, fmt.Errorf("%s id %s: not a positive integer", what, shownArg(a))
		}
		ids[i] = id
	}
	return ids, nil
}

func newTokenRevokeCmd() *cobra.Command {
	var f storeFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke --store PATH ID... [--reason TEXT]",
		Short: "Revoke tokens (the user's own action); their grants are kept",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs("token", args)
			if err != nil {
				return err
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				if err := db.RevokeTokens(cmd.Context(), ids, f.actor, reason); err != nil {
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"revoked": ids})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked %s %s\n", plural("token", len(ids)), strings.Join(args, ", "))
				return err
			})
		}),
	}
	f.register(cmd, outputText)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
