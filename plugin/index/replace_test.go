package index

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
)

// TestFollowIDNamesAnotherToken: `store migrate --replace` puts another
// world into the store a sidecar follows, in which token ids name other
// tokens than before. The change log names tokens by id; the index keeps
// them by hash: applying the change of an id must drop the token the index
// held under it before, or the old token stays allowed though its hash is
// no longer in the store (and its use is recorded as the new token's).
func TestFollowIDNamesAnotherToken(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testFollowIDNamesAnotherToken(t, filepath.Join(t.TempDir(), "pat.db")) })
	t.Run("postgres", func(t *testing.T) { testFollowIDNamesAnotherToken(t, pgtest.Database(t, "idx_replace_")) })
}

func testFollowIDNamesAnotherToken(t *testing.T, location string) {
	ctx := t.Context()
	target := openAtLocation(t, location)
	// The target: ids 1-4 name the tokens of hashes 1-4; token 4 is
	// fine-grained, approved for octo-org.
	for i := 1; i <= 3; i++ {
		if id := create(t, target, i); id != int64(i) {
			t.Fatalf("token %d got id %d", i, id)
		}
	}
	fgTok := fg(4, "bob")
	fgTok.ID = 0
	if tok, _, err := target.CreateToken(ctx, store.CreateTokenParams{Token: fgTok, GrantState: store.GrantApproved}); err != nil || tok.ID != 4 {
		t.Fatalf("creating the fine-grained token: id %d, %v", tok.ID, err)
	}
	x := follow(t, target, testPoll)
	if g, ok := x.Grant(4, "octo-org"); !ok || g.State.S != store.GrantApproved {
		t.Fatalf("grant of token 4 before: %+v, %v", g, ok)
	}

	// The source: id 1 names a new token (hash 11), id 2 the same one,
	// id 3 the target's token 1 (its hash moved), revoked, and id 4 a
	// classic token (hash 14) without a grant. The target's tokens 3 and 4
	// are in no id of it.
	source := openAtLocation(t, filepath.Join(t.TempDir(), "source.db"))
	for n, i := range []int{11, 2, 1, 14} {
		if id := create(t, source, i); id != int64(n+1) {
			t.Fatalf("source token %d got id %d", i, id)
		}
	}
	if err := source.RevokeToken(ctx, 3, "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.MigrateStore(ctx, source, target, store.MigrateOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	want := head(t, target).Seq
	waitFor(t, testPoll, fmt.Sprintf("the index to apply change %d", want), func() bool { return x.Seq() >= want })

	for _, c := range []struct {
		hash    int
		id      int64 // 0: not found
		revoked bool
	}{
		{hash: 1, id: 3, revoked: true},
		{hash: 2, id: 2},
		{hash: 3},
		{hash: 4},
		{hash: 11, id: 1},
		{hash: 14, id: 4},
	} {
		tok, ok := x.Token(hashOf(c.hash))
		if got, want := fmt.Sprint(ok, tok.ID, ok && tok.Shape.Revoked), fmt.Sprint(c.id != 0, c.id, c.revoked); got != want {
			t.Errorf("token of hash %d: found, id, revoked = %s; want %s", c.hash, got, want)
		}
	}
	if got := x.Counts(); got.Tokens != 4 || got.Grants != 0 {
		t.Errorf("counts %+v; want 4 tokens and no grant", got)
	}
	if x.Reloads() != 0 {
		t.Errorf("%d reloads; want the changes followed", x.Reloads())
	}
	// A deletion by id removes the token the id names now, only that one.
	x.DeleteToken(3)
	if _, ok := x.Token(hashOf(1)); ok {
		t.Error("token of hash 1 (id 3) is still found after id 3 was deleted")
	}
	if got := x.Counts().Tokens; got != 3 {
		t.Errorf("%d tokens after deleting id 3; want 3", got)
	}
}

// waitFor waits at most two polls and a second for ok.
func waitFor(t *testing.T, poll time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2*poll + time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
