package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SeedResult is what SeedIfEmpty did.
type SeedResult struct {
	// Seeded is true when this call imported the dump: the store held no
	// record. Only then is a store.import audit event recorded.
	Seeded bool
	// Import counts what the import wrote, when Seeded.
	Import ImportResult
	// Found names the records the store held instead, when not Seeded
	// ("5 users, 13 tokens").
	Found string
	// Meanwhile is set, when not Seeded, if the store held no record at
	// the first look and did once the write lock was taken: another process
	// seeded it (or wrote to it) in between.
	Meanwhile bool
}

// seedLockHook, when set (by tests), runs after SeedIfEmpty found the store
// empty without the write lock and before it takes the lock.
var seedLockHook func()

// SeedIfEmpty imports the dump that dump returns, as Import does, when the
// store holds no record (see Empty), and leaves a store that holds any as it
// is. Whether the store is empty is decided inside the import's write
// transaction, under the write lock (PostgreSQL's advisory lock, SQLite's
// BEGIN IMMEDIATE), so of several processes that seed one new store at once
// exactly one imports and records the import; the others find its records.
// A store that holds records at the first look, read without the lock, is
// left alone without taking the lock; dump is called only when the store
// is empty at that look.
func (db *DB) SeedIfEmpty(ctx context.Context, actor string, dump func() (*Dump, error)) (SeedResult, error) {
	counts, err := tableCounts(ctx, db.rdb)
	if err != nil {
		return SeedResult{}, err
	}
	if found := describeRecords(counts); found != "" {
		return SeedResult{Found: found}, nil
	}
	d, err := dump()
	if err != nil {
		return SeedResult{}, err
	}
	if seedLockHook != nil {
		seedLockHook()
	}
	res, found, err := db.importUnless(ctx, d, actor, func(tx *sql.Tx) (string, error) {
		counts, err := tableCounts(ctx, tx)
		if err != nil {
			return "", fmt.Errorf("under the write lock: %w", err)
		}
		return describeRecords(counts), nil
	})
	if err != nil {
		return SeedResult{}, err
	}
	if found != "" {
		return SeedResult{Found: found, Meanwhile: true}, nil
	}
	return SeedResult{Seeded: true, Import: res}, nil
}

// describeRecords is describeCounts without meta, the store's own
// bookkeeping (its id, written by the first process to write): a store that
// holds nothing else holds no record.
func describeRecords(counts map[string]int64) string {
	delete(counts, "meta")
	return describeCounts(counts)
}
