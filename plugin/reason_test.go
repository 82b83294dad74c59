package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
	patrego "github.com/opa-pat/opa-pat/rego"
)

// The decision's message for a denied or revoked grant gives the reviewer's
// reason, and none when the reviewer gave none: the requester's
// justification ("I need this for ops") is not the reviewer's reason, and
// read "an owner denied this token's request (reason: I need this for
// ops)". It stays in the list of requests. Through the store, the sidecar's
// index (following changes, and loading afresh) and pat.grant.
func TestDecisionGivesTheReviewersReasonOnly(t *testing.T) {
	path, _ := seed(t)
	_, p := newManager(t, `{"store": {"path": "`+path+`"}}`)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	cli, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("data.pat.decision.message"), rego.Target("rego")}
	for name, src := range mods {
		opts = append(opts, rego.Module(name, src))
	}
	pq, err := rego.New(opts...).PrepareForEval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	message := func(raw string) string {
		rs, err := pq.Eval(t.Context(), rego.EvalInput(map[string]any{
			"credential": map[string]any{"type": "pat", "token": raw},
			"resource":   map[string]any{"owner": "octo-org", "repository": "app", "visibility": "private"},
			"action":     "write", "permission": "contents",
		}))
		if err != nil || len(rs) != 1 {
			t.Fatalf("decision: %v %v", rs, err)
		}
		s, _ := rs[0].Expressions[0].Value.(string)
		return s
	}
	newToken := func(name string) (string, store.Grant) {
		raw, _ := token.Generate(token.KindFineGrained, token.DefaultPrefixes)
		now := time.Now()
		_, g, err := cli.CreateToken(t.Context(), store.CreateTokenParams{
			Token: store.Token{Hash: token.Hash(raw), Name: name, Kind: store.KindFineGrained, User: "bob",
				ResourceOwner: "octo-org", RepositorySelection: "selected", Repositories: []string{"app"},
				Permissions: map[string]string{"contents": "write"}, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
			GrantState: store.GrantPending, Justification: "I need this for ops",
		})
		if err != nil {
			t.Fatal(err)
		}
		return raw, *g
	}
	const next = ": the policy is set by the octo-org organization; request access to octo-org again with a justification"
	denied, dg := newToken("denied")
	withReason, wg := newToken("with-reason")
	revoked, rg := newToken("revoked")
	if _, err := cli.Review(t.Context(), store.ReviewParams{Org: "octo-org", IDs: []int64{dg.ID}, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Review(t.Context(), store.ReviewParams{Org: "octo-org", IDs: []int64{wg.ID}, Actor: "alice", Reason: "too broad"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Review(t.Context(), store.ReviewParams{Org: "octo-org", IDs: []int64{rg.ID}, Approve: true, Actor: "alice", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.RevokeGrants(t.Context(), "octo-org", []int64{rg.TokenID}, "alice", ""); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		denied:     "octo-org requires approval of fine-grained personal access tokens and an owner denied this token's request" + next,
		withReason: "octo-org requires approval of fine-grained personal access tokens and an owner denied this token's request (reason: too broad)" + next,
		revoked:    "octo-org requires approval of fine-grained personal access tokens and an owner revoked this token's access" + next,
	}
	check := func(t *testing.T) {
		for raw, w := range want {
			var got string
			deadline := time.Now().Add(2 * time.Second)
			for got = message(raw); got != w && time.Now().Before(deadline); got = message(raw) {
				time.Sleep(10 * time.Millisecond)
			}
			if got != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
			if strings.Contains(got, "I need this for ops") {
				t.Errorf("the justification reached the decision: %s", got)
			}
		}
	}
	t.Run("following the store", check)
	// A sidecar that starts afresh loads the same.
	p.Stop(context.Background())
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Run("loaded afresh", check)
	// The justification stays with the request.
	reqs, err := cli.ListRequests(t.Context(), store.RequestFilter{Org: "octo-org"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Justification != "I need this for ops" {
			t.Errorf("request %d: justification %q", r.ID, r.Justification)
		}
	}
}
