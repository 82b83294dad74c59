package store

import (
	"testing"
)

// TestRowCountsMatchLoad: RowCounts counts what Load passes, table by
// table (every request, with EveryRequest, where the current grants are
// fewer), and the change log's last number that Load returns.
func TestRowCountsMatchLoad(t *testing.T) { adminBackends(t, testRowCountsMatchLoad) }

func testRowCountsMatchLoad(t *testing.T, location string) {
	ctx := t.Context()
	db := openAt(t, location)
	if _, err := db.Import(ctx, &Dump{
		Users:        []DumpUser{{Login: "bob", ManagedBy: Null()}, {Login: "Carol", ManagedBy: Null()}},
		Repositories: []DumpRepository{{Owner: "octo-org", Name: "app", Visibility: "private"}},
		Memberships:  []DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}, {User: "Carol", Org: "octo-org", Role: "owner"}},
	}, "test"); err != nil {
		t.Fatal(err)
	}
	fg, g, err := db.CreateToken(ctx, CreateTokenParams{Token: fgToken(1, "bob", "octo-org"), GrantState: GrantPending})
	if err != nil || g == nil {
		t.Fatalf("creating the fine-grained token: %v, grant %v", err, g)
	}
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{g.ID}, Actor: "carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RequestAgain(ctx, RequestAgainParams{TokenID: fg.ID, Org: "octo-org", Actor: "bob", Justification: "please"}); err != nil {
		t.Fatal(err)
	}
	for b := byte(2); b <= 4; b++ {
		tok := Token{Hash: hashOf(b), Name: "t", Kind: KindClassic, User: "bob", Scopes: []string{"repo"}, CreatedAt: t0}
		if _, _, err := db.CreateToken(ctx, CreateTokenParams{Token: tok}); err != nil {
			t.Fatal(err)
		}
	}

	count := func(everyRequest bool) RowCounts {
		var n RowCounts
		seq, err := db.Load(ctx, Visitor{
			User:         func(User) error { n.Users++; return nil },
			Membership:   func(Membership) error { n.Memberships++; return nil },
			Repository:   func(Repository) error { n.Repositories++; return nil },
			Token:        func(Token) error { n.Tokens++; return nil },
			Grant:        func(Grant) error { n.Requests++; return nil },
			EveryRequest: everyRequest,
		})
		if err != nil {
			t.Fatal(err)
		}
		n.Seq = seq
		return n
	}
	loaded := count(true)
	got, err := db.RowCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != loaded {
		t.Errorf("RowCounts = %+v; Load passed %+v", got, loaded)
	}
	if want := (RowCounts{Seq: got.Seq, Users: 2, Memberships: 2, Repositories: 1, Tokens: 4, Requests: 2}); got != want {
		t.Errorf("RowCounts = %+v; want %+v", got, want)
	}
	if current := count(false).Requests; current != 1 {
		t.Errorf("Load passed %d current grants; want 1 (the two requests of one token and organization)", current)
	}
}
