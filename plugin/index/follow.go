package index

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// Defaults for Follow.
const (
	// DefaultPollInterval is the safety net when a wake-up is missed: the
	// index reads the change log at least this often.
	DefaultPollInterval = time.Second
	// changeBatch is how many change-log entries one read asks for.
	changeBatch = 1000
)

type seqCounter struct{ v atomic.Int64 }

func (c *seqCounter) load() int64   { return c.v.Load() }
func (c *seqCounter) store(s int64) { c.v.Store(s) }

// Follow keeps the index current until ctx ends: it waits for r.Wake (or
// at most poll), reads the changes after the last one applied and re-reads
// each changed record by its key (or loads the store afresh: CatchUp). An
// error is passed to onErr (which may be nil) and the same changes are read
// again on the next round, so nothing is skipped. After each round that
// succeeded, Follow calls each of after (the plugin compares Reloads there).
// Follow returns when ctx ends.
func (x *Index) Follow(ctx context.Context, r store.Reader, poll time.Duration, onErr func(error), after ...func()) {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	wake := r.Wake(ctx)
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		start := time.Now()
		if err := x.CatchUp(ctx, r); err == nil {
			x.fresh.markCurrent(start)
			for _, fn := range after {
				fn()
			}
		} else if ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-wake:
			if !ok {
				wake = nil // closed: rely on the ticker
			}
		case <-ticker.C:
		}
	}
}

// CatchUp applies every change after the last one applied. When following
// the change log would skip changes, CatchUp loads the store afresh, as a
// restart would: when the log was pruned past that change
// (store.ErrChangesPruned), or the store is not the one the index loaded
// (store.ErrStoreReplaced: a backup restored, so that the log went
// backwards or holds other changes, or a store created anew). The records
// it has keep answering until the new ones are all in place, at once
// (Reloads counts these loads, LastReload says why).
//
// A store whose schema is older than the one loaded (store.ErrStoreOlder: a
// backup from before an upgrade restored) can be neither followed nor
// loaded until a process of this version migrates it: CatchUp returns the
// error, and until a catch-up succeeds Current fails at once (fail closed),
// since the index may hold tokens the store no longer does.
//
// After loading a replaced store, CatchUp settles: for settleQuiet
// (DefaultSettleQuiet) it also counts the store's rows on every round that
// succeeds without loading, and loads the store afresh again (LastReload:
// ErrStoreSettling) when they changed beyond what the changes applied since
// explain. A restore that is not one transaction makes the tables visible
// one by one, and fills them without change-log entries: the index may
// have loaded the store before the tokens were back.
func (x *Index) CatchUp(ctx context.Context, r store.Reader) error {
	reloads := x.reloads.Load()
	err := x.catchUp(ctx, r)
	if err == nil && x.settle.active() && x.reloads.Load() == reloads {
		err = x.checkSettled(ctx, r)
	}
	switch {
	case err == nil:
		if x.older.Load() != nil {
			x.older.Store(nil)
		}
	case errors.Is(err, store.ErrStoreOlder):
		x.older.Store(&err)
	}
	return err
}

func (x *Index) catchUp(ctx context.Context, r store.Reader) error {
	for {
		after := x.Seq()
		var changes []store.Change
		err := x.read(ctx, "the change log", x.ReadTimeout(), func(ctx context.Context) (err error) {
			changes, err = r.ChangesSince(ctx, x.mark, changeBatch)
			return err
		})
		if errors.Is(err, store.ErrStoreOlder) {
			return err
		}
		if errors.Is(err, store.ErrChangesPruned) || errors.Is(err, store.ErrStoreReplaced) {
			if lerr := x.reload(ctx, r); lerr != nil {
				if errors.Is(err, store.ErrChangesPruned) {
					return fmt.Errorf("the change log was pruned past change %d, the last one the index applied, "+
						"and loading the store afresh failed: %w", after, lerr)
				}
				return fmt.Errorf("%w; loading the store afresh failed: %w", err, lerr)
			}
			x.reloadWhy.Store(&err)
			x.reloads.Add(1)
			if errors.Is(err, store.ErrStoreReplaced) {
				x.startSettling(time.Now())
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the store's change log after change %d: %w", after, err)
		}
		if len(changes) == 0 {
			return nil
		}
		// A record changed several times in one batch is read once.
		seen := make(map[store.Change]bool, len(changes))
		for _, c := range changes {
			key := store.Change{Entity: c.Entity, Key: c.Key}
			if seen[key] {
				continue
			}
			seen[key] = true
			if err := x.apply(ctx, r, c); err != nil {
				return &RecordError{Seq: c.Seq, Entity: c.Entity, Key: c.Key, Err: err}
			}
		}
		if x.settle.active() {
			x.settle.note(changes)
		}
		x.mark = x.mark.After(changes[len(changes)-1])
		x.seq.store(x.mark.Seq)
		if len(changes) < changeBatch {
			return nil
		}
	}
}

// reload loads the store afresh within a catch-up, with reloadTimeout.
func (x *Index) reload(ctx context.Context, r store.Reader) error {
	return x.read(ctx, "the whole store", reloadTimeout, func(ctx context.Context) error { return x.Load(ctx, r) })
}

// apply re-reads the record a change names and puts it in the index, or
// removes it when it is gone.
func (x *Index) apply(ctx context.Context, r store.Reader, c store.Change) error {
	switch c.Entity {
	case store.EntityUser:
		var u store.User
		var ok bool
		err := x.read(ctx, describeRecord("user", c.Key), x.ReadTimeout(), func(ctx context.Context) (err error) {
			u, ok, err = r.User(ctx, c.Key)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			x.PutUser(u)
		} else {
			x.DeleteUser(c.Key)
		}
	case store.EntityMembership:
		user, org, err := splitKey(c.Key)
		if err != nil {
			return err
		}
		var m store.Membership
		var ok bool
		err = x.read(ctx, describeRecord("membership", c.Key), x.ReadTimeout(), func(ctx context.Context) (err error) {
			m, ok, err = r.Membership(ctx, user, org)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			x.PutMembership(m)
		} else {
			x.DeleteMembership(user, org)
		}
	case store.EntityRepository:
		owner, name, err := splitKey(c.Key)
		if err != nil {
			return err
		}
		var rp store.Repository
		var ok bool
		err = x.read(ctx, describeRecord("repository", c.Key), x.ReadTimeout(), func(ctx context.Context) (err error) {
			rp, ok, err = r.Repository(ctx, owner, name)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			x.PutRepository(rp)
		} else {
			x.DeleteRepository(owner, name)
		}
	case store.EntityToken:
		id, err := strconv.ParseInt(c.Key, 10, 64)
		if err != nil {
			return fmt.Errorf("token key %q is not a token id: %w", c.Key, err)
		}
		var t store.Token
		var ok bool
		err = x.read(ctx, describeRecord("token", c.Key), x.ReadTimeout(), func(ctx context.Context) (err error) {
			t, ok, err = r.Token(ctx, id)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			x.PutToken(t)
		} else {
			x.DeleteToken(id)
		}
	case store.EntityGrant:
		idText, org, err := splitKey(c.Key)
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			return fmt.Errorf("grant key %q does not start with a token id: %w", c.Key, err)
		}
		var g store.Grant
		var ok bool
		err = x.read(ctx, describeRecord("grant", c.Key), x.ReadTimeout(), func(ctx context.Context) (err error) {
			g, ok, err = r.Grant(ctx, id, org)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			x.PutGrant(g)
		} else {
			x.DeleteGrant(id, org)
		}
	default:
		// An entity this index does not keep (audit events, settings).
	}
	return nil
}

// RecordError is a catch-up that read the change log but not a record
// that one of its changes names (a role without SELECT on that record's
// table, say): the index applies that change, and those after it, once the
// record can be read.
type RecordError struct {
	// Seq, Entity and Key are the change's.
	Seq         int64
	Entity, Key string
	Err         error
}

func (e *RecordError) Error() string { return fmt.Sprintf("applying change %d: %v", e.Seq, e.Err) }

func (e *RecordError) Unwrap() error { return e.Err }

func splitKey(key string) (string, string, error) {
	a, b, ok := strings.Cut(key, "/")
	if !ok || a == "" || b == "" {
		return "", "", fmt.Errorf("key %q is not of the form a/b", key)
	}
	return a, b, nil
}

// StoreOlder is the store.ErrStoreOlder error of the last catch-up while
// the store's schema is older than the one the index loaded (nil
// otherwise): token decisions deny until a process of this version
// migrates the store and the index loads it afresh.
func (x *Index) StoreOlder() error {
	if p := x.older.Load(); p != nil {
		return *p
	}
	return nil
}

// Reloads is how many times CatchUp loaded the store afresh because the
// change log had been pruned past the index, the store was replaced, or its
// tables changed outside the log while it settled after that.
func (x *Index) Reloads() int64 { return x.reloads.Load() }

// LastReload is why CatchUp last loaded the store afresh (nil before it
// did): an error that is store.ErrChangesPruned, store.ErrStoreReplaced or
// ErrStoreSettling.
func (x *Index) LastReload() error {
	if p := x.reloadWhy.Load(); p != nil {
		return *p
	}
	return nil
}
