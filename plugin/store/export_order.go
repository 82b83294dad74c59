package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
)

// ExportSorted is Export with its records in one order on every backend:
// users by login, memberships by user and organization, repositories by
// owner and name, tokens by id, and grants by their token's id and
// organization, names compared byte by byte. Export lists them in the
// order the database reads its tables, which differs between SQLite and
// PostgreSQL (and, on PostgreSQL, moves a row that was updated), so that
// exports of one world could not be compared or diffed.
func (db *DB) ExportSorted(ctx context.Context) (*Dump, error) {
	d, err := db.Export(ctx)
	if err != nil {
		return nil, err
	}
	// Ids are not part of a dump: read them by hash, which never changes.
	ids := make(map[string]int64, len(d.Tokens))
	err = each(ctx, db.rdb, `SELECT id, hash FROM tokens`, func(rows *sql.Rows) error {
		var id int64
		var hash []byte
		if err := rows.Scan(&id, &hash); err != nil {
			return err
		}
		ids[hex.EncodeToString(hash)] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tokens' ids: %w", err)
	}
	sortDump(d, ids)
	return d, nil
}

// sortDump orders d's records (ExportSorted); ids gives each token's id by
// its token_sha256.
func sortDump(d *Dump, ids map[string]int64) {
	slices.SortFunc(d.Users, func(a, b DumpUser) int { return cmp.Compare(a.Login, b.Login) })
	slices.SortFunc(d.Memberships, func(a, b DumpMembership) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Org, b.Org))
	})
	slices.SortFunc(d.Repositories, func(a, b DumpRepository) int {
		return cmp.Or(cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(d.Tokens, func(a, b DumpToken) int {
		return cmp.Or(cmp.Compare(ids[a.TokenSHA256], ids[b.TokenSHA256]), cmp.Compare(a.TokenSHA256, b.TokenSHA256))
	})
	slices.SortFunc(d.Grants, func(a, b DumpGrant) int {
		return cmp.Or(cmp.Compare(ids[a.TokenSHA256], ids[b.TokenSHA256]), cmp.Compare(a.TokenSHA256, b.TokenSHA256), cmp.Compare(a.Org, b.Org))
	})
}
