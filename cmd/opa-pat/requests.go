package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/issue"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func init() {
	subcommands = append(subcommands, newRequestsCmd)
}

func newRequestsCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "requests",
		Short: "Review fine-grained tokens' requests to reach organizations",
	}
	root.AddCommand(newRequestsListCmd(), newReviewCmd(true), newReviewCmd(false), newRequestsRevokeCmd(), newRequestsCreateCmd())
	return root
}

func printRequests(cmd *cobra.Command, f *storeFlags, reqs []store.Request) error {
	if f.json() {
		return writeJSON(cmd.OutOrStdout(), reqs)
	}
	rows := make([][]string, len(reqs))
	for i, r := range reqs {
		rows[i] = []string{strconv.FormatInt(r.ID, 10), strconv.FormatInt(r.TokenID, 10), orDash(r.TokenName), r.User, r.Org, r.State,
			orDash(r.Reviewer), r.UpdatedAt.Format(time.RFC3339), orDash(oneLine(r.Reason))}
	}
	if err := table(cmd.OutOrStdout(), []string{"ID", "TOKEN", "NAME", "USER", "ORG", "STATE", "REVIEWER", "UPDATED", "REASON"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%d %s\n", len(reqs), plural("request", len(reqs)))
	return err
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newRequestsListCmd() *cobra.Command {
	var f storeFlags
	var filter store.RequestFilter
	var history bool
	cmd := &cobra.Command{
		Use:   "list --store PATH [--org O] [--state pending] [--user U] [--token ID] [--history]",
		Short: "List requests and their state (the current grant of each token, or the whole history)",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			switch filter.State {
			case "all":
				filter.State = ""
			case "", store.GrantPending, store.GrantApproved, store.GrantDenied, store.GrantRevoked:
			default:
				return fmt.Errorf("--state: unknown state %s, want pending, approved, denied, revoked or all", token.Quote(filter.State))
			}
			return f.withStoreRead(cmd, func(db *store.DB) error {
				if err := spell(cmd.Context(), db, &filter.Org, &filter.User); err != nil {
					return err
				}
				// As in the admin API, a revoked token's requests are gone
				// from the list (GitHub drops a deleted token's); the
				// history keeps every request.
				filter.Current, filter.Live = !history, !history
				reqs, err := db.ListRequests(cmd.Context(), filter)
				if err != nil {
					return err
				}
				return printRequests(cmd, &f, reqs)
			})
		}),
	}
	f.registerRead(cmd, outputText)
	fl := cmd.Flags()
	fl.StringVar(&filter.Org, "org", "", "only requests for this organization")
	fl.StringVar(&filter.State, "state", "", "only requests in this state: pending, approved, denied, revoked or all (the default)")
	fl.StringVar(&filter.User, "user", "", "only requests for this user's tokens")
	idFlag(fl, &filter.TokenID, "token", "token", "only requests for this token id")
	fl.BoolVar(&history, "history", false, "include earlier requests, not only the current one of each token and organization, and those of revoked tokens")
	return cmd
}

func newReviewCmd(approve bool) *cobra.Command {
	var f storeFlags
	var org, reason string
	verb, done := "deny", "denied"
	if approve {
		verb, done = "approve", "approved"
	}
	cmd := &cobra.Command{
		Use:   verb + " --store PATH --org O ID... [--reason TEXT]",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " pending requests of an organization (1 to 100 at once, all or none)",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org: give the organization whose requests to review")
			}
			ids, err := parseIDs("request", args)
			if err != nil {
				return err
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				if err := spell(cmd.Context(), db, &org); err != nil {
					return err
				}
				grants, err := db.Review(cmd.Context(), store.ReviewParams{Org: org, IDs: ids, Approve: approve, Reason: reason, Actor: f.actor})
				if err != nil {
					return err
				}
				if f.json() {
					reqs, err := db.ListRequests(cmd.Context(), store.RequestFilter{Org: org})
					if err != nil {
						return err
					}
					reviewed := map[int64]bool{}
					for _, g := range grants {
						reviewed[g.ID] = true
					}
					out := []store.Request{}
					for _, r := range reqs {
						if reviewed[r.ID] {
							out = append(out, r)
						}
					}
					return writeJSON(cmd.OutOrStdout(), out)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %d %s of %s: %s\n", done, len(ids), plural("request", len(ids)), org, strings.Join(args, ", "))
				return err
			})
		}),
	}
	f.register(cmd, outputText)
	cmd.Flags().StringVar(&org, "org", "", "the organization")
	cmd.Flags().StringVar(&reason, "reason", "", "the reason, kept with the grant (at most 1024 characters)")
	return cmd
}

func newRequestsRevokeCmd() *cobra.Command {
	var f storeFlags
	var org, reason string
	var withoutGrant bool
	cmd := &cobra.Command{
		Use:   "revoke --store PATH --org O TOKEN_ID... [--without-grant] [--reason TEXT]",
		Short: "Revoke the approved grants of tokens for an organization, or with --without-grant the access of tokens that have none (all or none)",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org: give the organization whose grants to revoke")
			}
			ids, err := parseIDs("token", args)
			if err != nil {
				return err
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				ctx := cmd.Context()
				if err := spell(ctx, db, &org); err != nil {
					return err
				}
				if withoutGrant {
					// Every token must be one the flag is for: the store
					// would revoke an approved grant too, and the audit
					// log would not say the owner meant a token without
					// one. (A count the store refuses is left to it; a
					// grant recorded between this check and the write is
					// the store's to judge, as without the flag.)
					if len(ids) <= store.MaxReviewIDs {
						if err := checkWithoutGrant(ctx, db, org, ids, time.Now()); err != nil {
							return err
						}
					}
				}
				// The admin API's revocation (RevokeAccess): with
				// Grantless, a live fine-grained token of org without a
				// grant gets a revoked grant of its own, a grant.revoke
				// audit event with details.had_grant false.
				grants, err := db.RevokeAccess(ctx, store.RevokeParams{Org: org, TokenIDs: ids, Actor: f.actor, Reason: reason, Grantless: withoutGrant})
				if err != nil {
					if !withoutGrant && errors.Is(err, store.ErrNotFound) {
						return withoutGrantHint(ctx, db, org, ids, err)
					}
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), grantsJSON(grants))
				}
				if withoutGrant {
					reqs := make([]string, len(grants))
					for i, g := range grants {
						reqs[i] = strconv.FormatInt(g.ID, 10)
					}
					_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked the access of %s %s to %s, which had no grant: recorded as revoked %s %s\n",
						plural("token", len(ids)), strings.Join(args, ", "), org, plural("request", len(reqs)), strings.Join(reqs, ", "))
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked the grants of %s %s for %s\n", plural("token", len(ids)), strings.Join(args, ", "), org)
				return err
			})
		}),
	}
	f.register(cmd, outputText)
	cmd.Flags().StringVar(&org, "org", "", "the organization")
	cmd.Flags().StringVar(&reason, "reason", "", "the reason, kept with the grant (at most 1024 characters)")
	cmd.Flags().BoolVar(&withoutGrant, "without-grant", false,
		"revoke tokens that have no grant in the organization (live fine-grained tokens of it, which reach it where approval is disabled): record a revoked grant for each, as the admin API does")
	return cmd
}

// checkWithoutGrant refuses, naming each and what to do instead, the
// tokens requests revoke --without-grant is not for: every token must be a
// live fine-grained token aimed at org that has no grant there. The store
// checks again as it writes (RevokeAccess); this says why.
func checkWithoutGrant(ctx context.Context, db *store.DB, org string, ids []int64, now time.Time) error {
	var errs []string
	for _, id := range ids {
		t, ok, err := db.Token(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("token %d not found", id))
			continue
		case t.Kind != store.KindFineGrained:
			errs = append(errs, fmt.Sprintf("token %d is a classic token, which has no grants: to stop it, revoke the token (opa-pat token revoke %d)", id, id))
			continue
		case !strings.EqualFold(t.ResourceOwner, org):
			errs = append(errs, fmt.Sprintf("token %d's resource owner is %s, not %s (rule 6): it has no access to %s to revoke", id, t.ResourceOwner, org, org))
			continue
		case strings.EqualFold(t.User, org):
			errs = append(errs, fmt.Sprintf("token %d is not a fine-grained token aimed at an organization", id))
			continue
		case t.Revoked:
			errs = append(errs, fmt.Sprintf("token %d is revoked: nothing to revoke", id))
			continue
		case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now):
			errs = append(errs, fmt.Sprintf("token %d expired at %s: nothing to revoke", id, t.ExpiresAt.UTC().Format(time.RFC3339)))
			continue
		}
		g, ok, err := db.Grant(ctx, id, org)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch g.State {
		case store.GrantApproved:
			errs = append(errs, fmt.Sprintf("token %d has an approved grant in %s (request %d): leave out --without-grant to revoke it", id, org, g.ID))
		case store.GrantPending:
			errs = append(errs, fmt.Sprintf("token %d's grant in %s is pending (request %d): deny the request instead (opa-pat requests deny --org %s %d)", id, org, g.ID, org, g.ID))
		default:
			errs = append(errs, fmt.Sprintf("token %d's grant in %s is already %s (request %d), which blocks it: nothing to revoke", id, org, g.State, g.ID))
		}
	}
	if len(errs) > 0 {
		return errors.New("--without-grant: " + strings.Join(errs, "; "))
	}
	return nil
}

// withoutGrantHint adds to requests revoke's "no grant for token N" the
// flag that revokes the access such a token has, when it is one the flag
// is for: a live fine-grained token of org without a grant (it reaches org
// where approval is disabled). A token the flag would refuse gets no hint.
func withoutGrantHint(ctx context.Context, db *store.DB, org string, ids []int64, err error) error {
	var grantless []int64
	for _, id := range ids {
		if checkWithoutGrant(ctx, db, org, []int64{id}, time.Now()) == nil {
			grantless = append(grantless, id)
		}
	}
	if len(grantless) == 0 {
		return err
	}
	s := make([]string, len(grantless))
	for i, id := range grantless {
		s[i] = strconv.FormatInt(id, 10)
	}
	return fmt.Errorf("%w; %s %s %s %s without a grant when approval is disabled there: to revoke that access, give --without-grant",
		err, plural("token", len(s)), strings.Join(s, ", "), reachVerb(len(s)), org)
}

func reachVerb(n int) string {
	if n == 1 {
		return "reaches"
	}
	return "reach"
}

func newRequestsCreateCmd() *cobra.Command {
	var f storeFlags
	var org, reason, settingsFile string
	var tokenID int64
	cmd := &cobra.Command{
		Use:   "create --store PATH --org O --token ID [--reason TEXT] [--settings FILE]",
		Short: "Request access again for a token whose grant was denied or revoked",
		Long: `Request access again for a token whose grant was denied or revoked (SEMANTICS.md rule 23), or
for the first time for a fine-grained token of the organization that has no grant.

Where approval of fine-grained tokens is disabled in the organization, a pending request lets
the token through before any owner reviews it (rules 20 and 22), so a request after a denial or a
revocation is refused: an owner's decision stands. Whether approval is disabled is decided by the
embedded policy with the settings of --settings, else those a running sidecar recorded in the
store (opa-pat store settings), else the defaults (approval required), as for token create.`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if org == "" {
				return errors.New("--org: give the organization")
			}
			if tokenID == 0 { // a number below 1 is refused as the flag is read
				return errors.New("--token: give the token id")
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				ctx := cmd.Context()
				if err := spell(ctx, db, &org); err != nil {
					return err
				}
				// The settings a sidecar decides with, as token create
				// reads them: where approval is disabled the store refuses
				// a request after a denial or a revocation
				// (store.ErrDecisionStands).
				settings, defaulted, err := creationSettings(ctx, settingsFile, db)
				if err != nil {
					return err
				}
				disabled, err := issue.ApprovalDisabled(ctx, settings, org)
				if err != nil {
					return err
				}
				before, hadGrant, err := db.Grant(ctx, tokenID, org)
				if err != nil {
					return err
				}
				g, err := db.RequestAgain(ctx, store.RequestAgainParams{TokenID: tokenID, Org: org, Actor: f.actor, Justification: reason, ApprovalDisabled: disabled})
				switch {
				case errors.Is(err, store.ErrNoSuchToken), errors.Is(err, store.ErrNotOrgToken), errors.Is(err, store.ErrOtherOrg):
					// --token names a token that has no grant for org to
					// ask for (rules 6 and 17), as the admin API says.
					return fmt.Errorf("--token: %w", err)
				case err != nil:
					return err
				}
				if defaulted && hadGrant && (before.State == store.GrantDenied || before.State == store.GrantRevoked) {
					// Where approval is in fact disabled, the request has
					// let the token through: say what it was checked against.
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s records no settings (no sidecar has served it, and none were recorded): "+
						"the request was checked against the default settings, where approval is required; give --settings FILE, or record them with opa-pat store settings\n",
						store.RedactLocation(db.Location()))
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), grantsJSON([]store.Grant{g})[0])
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "request %d for token %d in %s: %s\n", g.ID, g.TokenID, g.Org, g.State)
				return err
			})
		}),
	}
	f.register(cmd, outputText)
	cmd.Flags().StringVar(&org, "org", "", "the organization")
	idFlag(cmd.Flags(), &tokenID, "token", "token", "the token id")
	cmd.Flags().StringVar(&reason, "reason", "", "the justification (at most 1024 characters)")
	cmd.Flags().StringVar(&settingsFile, "settings", "", "settings JSON (data.pat.settings) that say whether approval is disabled in the organization")
	return cmd
}

type grantJSON struct {
	ID        int64     `json:"id"`
	TokenID   int64     `json:"token_id"`
	Org       string    `json:"org"`
	State     string    `json:"state"`
	Reason    string    `json:"reason"`
	Reviewer  string    `json:"reviewer"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func grantsJSON(gs []store.Grant) []grantJSON {
	out := make([]grantJSON, len(gs))
	for i, g := range gs {
		// Times in whole seconds, as GitHub and the admin API show them.
		out[i] = grantJSON{ID: g.ID, TokenID: g.TokenID, Org: g.Org, State: g.State, Reason: g.Reason, Reviewer: g.Reviewer,
			CreatedAt: g.CreatedAt.UTC().Truncate(time.Second), UpdatedAt: g.UpdatedAt.UTC().Truncate(time.Second)}
	}
	return out
}
