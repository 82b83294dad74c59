package index

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// DefaultSettleQuiet is how long the tables of a store loaded afresh because
// it was replaced must keep their row counts before the index stops
// checking them (settling).
const DefaultSettleQuiet = 30 * time.Second

// ErrStoreSettling is why the index loaded the store afresh (LastReload)
// when, after it loaded a replaced store, a table it loads changed by more
// rows than the changes it applied since can explain: rows written without
// a change-log entry, as a restore that is not one transaction writes them
// (COPY), table after table, after the index loaded a half-filled database.
var ErrStoreSettling = errors.New("the store's tables changed outside its change log after the index loaded it afresh, " +
	"as while a backup is restored in more than one transaction")

// settling is the window after a reload of a replaced store: on every
// round that succeeds, the index counts the rows of the tables it loads
// (store.Reader.RowCounts, one statement) and loads the store afresh again
// when they changed beyond what the changes it applied explain. Only the
// writer touches it; outside the window a round costs what it did before.
type settling struct {
	// until is when the window may end (zero: no window): at the first
	// check from then on that finds the counts explained. A reload of
	// the store puts it settleQuiet ahead again.
	until time.Time
	// base is the row counts as of base.Seq: those the last load passed
	// (the snapshot's own, counted as they came), or those of a later
	// check that the changes applied since explained.
	base store.RowCounts
	// applied counts, by entity, the changes applied after base.Seq (its
	// Seq is unused): each writes at most one row of its table, so a
	// count may differ from base's by at most that many.
	applied store.RowCounts
}

func (s *settling) active() bool { return !s.until.IsZero() }

// rebase makes the counts of a new load the ones to compare with.
func (s *settling) rebase(loaded store.RowCounts) {
	s.base, s.applied = loaded, store.RowCounts{}
}

// note counts changes applied while the window is open.
func (s *settling) note(changes []store.Change) {
	for _, c := range changes {
		switch c.Entity {
		case store.EntityUser:
			s.applied.Users++
		case store.EntityMembership:
			s.applied.Memberships++
		case store.EntityRepository:
			s.applied.Repositories++
		case store.EntityToken:
			s.applied.Tokens++
		case store.EntityGrant:
			s.applied.Requests++
		}
	}
}

// unexplained describes how the counts c differ from the base beyond the
// changes applied since ("tokens 0 → 13, users 0 → 4"); "" when they do
// not.
func (s *settling) unexplained(c store.RowCounts) string {
	var parts []string
	for _, t := range []struct {
		name           string
		was, now, told int64
		change         string
	}{
		{"users", s.base.Users, c.Users, s.applied.Users, "user"},
		{"memberships", s.base.Memberships, c.Memberships, s.applied.Memberships, "membership"},
		{"repositories", s.base.Repositories, c.Repositories, s.applied.Repositories, "repository"},
		{"tokens", s.base.Tokens, c.Tokens, s.applied.Tokens, "token"},
		{"requests", s.base.Requests, c.Requests, s.applied.Requests, "grant"},
	} {
		d := t.now - t.was
		if d <= t.told && -d <= t.told {
			continue
		}
		part := fmt.Sprintf("%s %d → %d", t.name, t.was, t.now)
		if t.told == 1 {
			part += fmt.Sprintf(" (1 %s change applied since)", t.change)
		} else if t.told > 1 {
			part += fmt.Sprintf(" (%d %s changes applied since)", t.told, t.change)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// startSettling opens (or restarts) the window after a reload.
func (x *Index) startSettling(now time.Time) {
	x.settle.until = now.Add(x.settleQuiet)
	x.settle.rebase(x.loaded)
}

// checkSettled is the window's check, after a round that succeeded without
// loading: it counts the store's rows and loads the store afresh when they
// changed beyond what the changes applied since explain. A count that
// fails is this round's error.
func (x *Index) checkSettled(ctx context.Context, r store.Reader) error {
	now := time.Now()
	var c store.RowCounts
	err := x.read(ctx, "the store's row counts", x.ReadTimeout(), func(ctx context.Context) (err error) {
		c, err = r.RowCounts(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("checking that the store loaded afresh is whole: %w", err)
	}
	if c.Seq != x.mark.Seq {
		// Changes logged since this round read the log (or a log that went
		// backwards, which the next round finds): judged once applied.
		return nil
	}
	if diff := x.settle.unexplained(c); diff != "" {
		why := fmt.Errorf("%w: %s", ErrStoreSettling, diff)
		if err := x.reload(ctx, r); err != nil {
			return fmt.Errorf("%w; loading the store afresh failed: %w", why, err)
		}
		x.reloadWhy.Store(&why)
		x.reloads.Add(1)
		x.startSettling(now)
		return nil
	}
	x.settle.rebase(c)
	if !now.Before(x.settle.until) {
		x.settle = settling{} // the counts held for settleQuiet: settled
	}
	return nil
}
