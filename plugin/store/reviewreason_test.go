package store

import (
	"testing"
	"time"
)

// A grant's ReviewReason is the reviewer's reason alone, through every read
// a sidecar makes (Load and the point read of a change) on both backends:
// empty while pending and after a review without one, where Reason falls
// back to the requester's justification.
func TestGrantReviewReason(t *testing.T) { adminBackends(t, testGrantReviewReason) }

func testGrantReviewReason(t *testing.T, location string) {
	db := openAt(t, location)
	ctx := t.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// An approval needs a live token of a member (rules 2 and 10).
	db.now = func() time.Time { return base.Add(time.Minute) }
	addMember(t, db, "bob", "octo-org")
	grants := map[string]Grant{}
	for i, name := range []string{"pending", "denied", "denied-why", "revoked"} {
		var h [32]byte
		h[0] = byte(i + 1)
		_, g, err := db.CreateToken(ctx, CreateTokenParams{Token: Token{Hash: h, Name: name, Kind: KindFineGrained, User: "bob",
			ResourceOwner: "octo-org", RepositorySelection: "all", CreatedAt: base, ExpiresAt: base.Add(time.Hour)},
			GrantState: GrantPending, Justification: "I need this for ops"})
		if err != nil {
			t.Fatal(err)
		}
		grants[name] = *g
	}
	review := func(name string, approve bool, reason string) {
		t.Helper()
		gs, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{grants[name].ID}, Approve: approve, Reason: reason, Actor: "alice"})
		if err != nil || gs[0].ReviewReason != reason {
			t.Fatalf("review %s: %+v %v", name, gs, err)
		}
	}
	review("denied", false, "")
	review("denied-why", false, "too broad")
	review("revoked", true, "fine")
	if gs, err := db.RevokeGrants(ctx, "octo-org", []int64{grants["revoked"].TokenID}, "alice", ""); err != nil || gs[0].ReviewReason != "" {
		t.Fatalf("revoke: %+v %v", gs, err)
	}
	want := map[int64][2]string{ // token id: Reason, ReviewReason
		grants["pending"].TokenID:    {"I need this for ops", ""},
		grants["denied"].TokenID:     {"I need this for ops", ""},
		grants["denied-why"].TokenID: {"too broad", "too broad"},
		grants["revoked"].TokenID:    {"I need this for ops", ""},
	}
	loaded := map[int64]Grant{}
	for _, every := range []bool{false, true} {
		if _, err := db.Load(ctx, Visitor{EveryRequest: every, Grant: func(g Grant) error { loaded[g.TokenID] = g; return nil }}); err != nil {
			t.Fatal(err)
		}
		for id, w := range want {
			if g := loaded[id]; g.Reason != w[0] || g.ReviewReason != w[1] {
				t.Errorf("Load (every request %t): token %d: reason %q, review reason %q; want %q, %q", every, id, g.Reason, g.ReviewReason, w[0], w[1])
			}
			g, ok, err := db.Grant(ctx, id, "octo-org")
			if err != nil || !ok || g.Reason != w[0] || g.ReviewReason != w[1] {
				t.Errorf("Grant: token %d: %+v %v %v; want %q, %q", id, g, ok, err, w[0], w[1])
			}
		}
	}
}
