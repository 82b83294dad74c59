package store

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// adminBackends runs a test against SQLite and, when a server answers,
// PostgreSQL.
func adminBackends(t *testing.T, fn func(t *testing.T, location string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "pat.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, testPostgresDSN(t)) })
}

func adminTestStore(t *testing.T, location string) (*DB, map[string]int64) {
	t.Helper()
	ctx := t.Context()
	db := openAt(t, location)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.Import(ctx, &Dump{Repositories: []DumpRepository{
		{Owner: "octo-org", Name: "app", Visibility: "private"}, {Owner: "octo-org", Name: "docs", Visibility: "public"},
	}, Memberships: []DumpMembership{{User: "bob", Org: "octo-org", Role: "member"}}}, "test"); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for i, tc := range []struct {
		name, user, selection string
		repos                 []string
		perms                 map[string]string
	}{
		{"a", "bob", "selected", []string{"app"}, map[string]string{"contents": "write"}},
		{"b", "bob", "all", nil, map[string]string{"pull_requests": "read"}},
		{"c", "carol", "public", nil, map[string]string{"pullXrequests": "read"}},
		{"d", "carol", "selected", []string{"app_x"}, map[string]string{"issues": "read"}},
	} {
		var h [32]byte
		h[0] = byte(i + 1)
		created := base.Add(time.Duration(i) * time.Hour)
		tok, _, err := db.CreateToken(ctx, CreateTokenParams{Token: Token{Hash: h, Name: tc.name, Kind: KindFineGrained, User: tc.user,
			ResourceOwner: "octo-org", RepositorySelection: tc.selection, Repositories: tc.repos, Permissions: tc.perms,
			CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}, GrantState: GrantPending, Justification: "why " + tc.name})
		if err != nil {
			t.Fatal(err)
		}
		ids[tc.name] = tok.ID
	}
	if err := db.TouchLastUsed(ctx, []int64{ids["a"]}, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return db, ids
}

func TestListOrgGrants(t *testing.T) { adminBackends(t, testListOrgGrants) }

func testListOrgGrants(t *testing.T, location string) {
	db, ids := adminTestStore(t, location)
	for _, tc := range []struct {
		note  string
		f     OrgGrantFilter
		want  []string
		total int
	}{
		{note: "all, newest first", f: OrgGrantFilter{}, want: []string{"d", "c", "b", "a"}, total: 4},
		{note: "ascending", f: OrgGrantFilter{Ascending: true}, want: []string{"a", "b", "c", "d"}, total: 4},
		{note: "page 2 of 2", f: OrgGrantFilter{Page: 2, PerPage: 3}, want: []string{"a"}, total: 4},
		{note: "beyond the last page", f: OrgGrantFilter{Page: 3, PerPage: 3}, want: []string{}, total: 4},
		{note: "owners", f: OrgGrantFilter{Owners: []string{"carol"}}, want: []string{"d", "c"}, total: 2},
		{note: "owners without regard to case", f: OrgGrantFilter{Owners: []string{"CAROL", "Bob"}}, want: []string{"d", "c", "b", "a"}, total: 4},
		{note: "an owner in another case", f: OrgGrantFilter{Owners: []string{"Carol"}}, want: []string{"d", "c"}, total: 2},
		{note: "token ids", f: OrgGrantFilter{TokenIDs: []int64{ids["b"], ids["c"]}}, want: []string{"c", "b"}, total: 2},
		{note: "permission, underscore is literal", f: OrgGrantFilter{Permission: "pull_requests"}, want: []string{"b"}, total: 1},
		{note: "repository: all and selected", f: OrgGrantFilter{Repository: "app"}, want: []string{"b", "a"}, total: 2},
		{note: "repository: public selection reaches public ones", f: OrgGrantFilter{Repository: "docs"}, want: []string{"c", "b"}, total: 2},
		{note: "last used after", f: OrgGrantFilter{LastUsedAfter: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}, want: []string{"a"}, total: 1},
		{note: "last used before: never used does not match", f: OrgGrantFilter{LastUsedBefore: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, want: []string{"a"}, total: 1},
		{note: "state", f: OrgGrantFilter{State: GrantApproved}, want: []string{}, total: 0},
		{note: "another org", f: OrgGrantFilter{Org: "other"}, want: []string{}, total: 0},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if tc.f.Org == "" {
				tc.f.Org = "octo-org"
			}
			rows, total, err := db.ListOrgGrants(t.Context(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range rows {
				got = append(got, r.Token.Name)
				if r.Justification != "why "+r.Token.Name || r.Grant.State != GrantPending || r.Grant.TokenID != r.Token.ID {
					t.Errorf("row %+v", r)
				}
			}
			if !reflect.DeepEqual(got, tc.want) || total != tc.total {
				t.Fatalf("got %v (%d), want %v (%d)", got, total, tc.want, tc.total)
			}
		})
	}
}

func TestAdminPointReads(t *testing.T) { adminBackends(t, testAdminPointReads) }

func testAdminPointReads(t *testing.T, location string) {
	db, ids := adminTestStore(t, location)
	ctx := t.Context()
	rows, _, err := db.ListOrgGrants(ctx, OrgGrantFilter{Org: "octo-org", TokenIDs: []int64{ids["a"]}})
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	g, ok, err := db.OrgRequest(ctx, "octo-org", rows[0].Grant.ID)
	if err != nil || !ok || g.Token.Name != "a" || g.Token.LastUsedAt.IsZero() {
		t.Fatalf("OrgRequest: %+v %v %v", g, ok, err)
	}
	if _, ok, err := db.OrgRequest(ctx, "other-org", rows[0].Grant.ID); ok || err != nil {
		t.Fatalf("OrgRequest of another org: %v %v", ok, err)
	}
	for org, want := range map[string]bool{"octo-org": true, "nowhere": false} {
		if got, err := db.OrgKnown(ctx, org); err != nil || got != want {
			t.Errorf("OrgKnown(%s) = %v %v", org, got, err)
		}
	}
	repos, err := db.OwnerRepositories(ctx, "octo-org", "public")
	if err != nil || len(repos) != 1 || repos[0].Name != "docs" {
		t.Fatalf("OwnerRepositories: %v %v", repos, err)
	}
	toks, total, err := db.UserTokens(ctx, "carol", 1, 1)
	if err != nil || total != 2 || len(toks) != 1 || toks[0].Name != "d" {
		t.Fatalf("UserTokens: %v %d %v", toks, total, err)
	}
}

func TestListAuditPage(t *testing.T) { adminBackends(t, testListAuditPage) }

func testListAuditPage(t *testing.T, location string) {
	db, ids := adminTestStore(t, location)
	ctx := t.Context()
	// While token a lives: an expired token's request is not approved.
	db.now = func() time.Time { return t0.Add(time.Hour) }
	rows, _, _ := db.ListOrgGrants(ctx, OrgGrantFilter{Org: "octo-org", TokenIDs: []int64{ids["a"]}})
	if _, err := db.Review(ctx, ReviewParams{Org: "octo-org", IDs: []int64{rows[0].Grant.ID}, Approve: true, Reason: "fine", Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	events, total, err := db.ListAuditPage(ctx, AuditPageFilter{Org: "octo-org", Actor: "alice"})
	if err != nil || total != 1 || len(events) != 1 || events[0].Action != ActionRequestApprove || events[0].Reason != "fine" || events[0].TokenID != ids["a"] {
		t.Fatalf("by actor: %+v %d %v", events, total, err)
	}
	events, total, err = db.ListAuditPage(ctx, AuditPageFilter{Org: "octo-org", Actor: "ALICE"})
	if err != nil || total != 1 || len(events) != 1 || events[0].Actor != "alice" {
		t.Fatalf("by actor in another case: %+v %d %v", events, total, err)
	}
	events, total, err = db.ListAuditPage(ctx, AuditPageFilter{Org: "octo-org", Action: ActionRequestCreate, Page: 2, PerPage: 3})
	if err != nil || total != 4 || len(events) != 1 || events[0].TokenID != ids["a"] {
		t.Fatalf("page 2 of request.create, newest first: %+v %d %v", events, total, err)
	}
	events, _, err = db.ListAuditPage(ctx, AuditPageFilter{TokenIDs: []int64{ids["b"]}})
	if err != nil || len(events) != 2 || events[0].Action != ActionRequestCreate || events[1].Action != ActionTokenCreate {
		t.Fatalf("by token: %+v %v", events, err)
	}
	events, total, err = db.ListAuditPage(ctx, AuditPageFilter{TokenIDs: []int64{ids["b"], ids["c"]}, Action: ActionRequestCreate})
	if err != nil || total != 2 || len(events) != 2 || events[0].TokenID != ids["c"] || events[1].TokenID != ids["b"] {
		t.Fatalf("by two tokens: %+v %d %v", events, total, err)
	}
	events, total, err = db.ListAuditPage(ctx, AuditPageFilter{RequestIDs: []int64{rows[0].Grant.ID, 999}})
	if err != nil || total != 2 || events[0].Action != ActionRequestApprove || events[1].Action != ActionRequestCreate {
		t.Fatalf("by requests: %+v %d %v", events, total, err)
	}
}
