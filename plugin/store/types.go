// Package store keeps opa-pat's records: users, memberships, repositories,
// tokens (SHA-256 only), approval grants with their history, audit events and
// the change log that running sidecars follow. SQLite is the embedded backend;
// PostgreSQL serves fleets. Both share one schema and one set of migrations.
package store

import (
	"context"
	"fmt"
	"time"
)

// Token kinds.
const (
	KindClassic     = "classic"
	KindFineGrained = "fine_grained"
)

// Grant states (SEMANTICS.md rules 19-23).
const (
	GrantPending  = "pending"
	GrantApproved = "approved"
	GrantDenied   = "denied"
	GrantRevoked  = "revoked"
)

// User is a person who may hold tokens. ManagedBy names the enterprise of an
// enterprise managed user, "" otherwise.
type User struct {
	Login     string
	ManagedBy string
}

// Membership is a user's role in an organization: owner, member or
// outside_collaborator.
type Membership struct {
	User string
	Org  string
	Role string
}

// Repository is a repository and its visibility: public, internal or private.
type Repository struct {
	Owner      string
	Name       string
	Visibility string
}

// Token is a personal access token as stored: never the raw token, only the
// SHA-256 of it.
type Token struct {
	ID   int64
	Hash [32]byte
	Name string
	Kind string // KindClassic or KindFineGrained
	User string

	// Classic tokens.
	Scopes []string

	// Fine-grained tokens.
	ResourceOwner       string
	RepositorySelection string // all, selected or public
	Repositories        []string
	Permissions         map[string]string // permission name -> read, write or admin

	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: no expiry
	Revoked    bool
	LastUsedAt time.Time // zero: never used
}

// Grant is the current state of a fine-grained token's access to an
// organization. ID is the id of the request that created it.
type Grant struct {
	ID      int64
	TokenID int64
	Org     string
	State   string // GrantPending, GrantApproved, GrantDenied or GrantRevoked
	// Reason is the reason kept with the grant: the reviewer's when the
	// review gave one, else the requester's justification (what an export
	// and the lists show as the grant's reason).
	Reason string
	// ReviewReason is the reviewer's reason alone: "" while pending and
	// when the review gave none. It is what a decision quotes (pat.grant's
	// reason): the requester's justification is not an owner's reason.
	ReviewReason string
	Reviewer     string // "" while pending
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Entity names used in the change log.
const (
	EntityUser       = "user"
	EntityMembership = "membership"
	EntityRepository = "repository"
	EntityToken      = "token"
	EntityGrant      = "grant"
)

// Change is one entry of the change log: which record changed. Readers
// re-read the record by its key; a record that is gone was deleted.
// Keys: user: login; membership: user "/" org; repository: owner "/" name;
// token: decimal id; grant: decimal token id "/" org.
type Change struct {
	Seq    int64
	Entity string
	Key    string
	// Nonce is a random number the database gave this change when it was
	// logged (schema migration 4): two writes that log the same record at
	// the same number, in a store and in a backup of it restored and
	// written to, almost surely differ in it.
	Nonce int64
}

// Sizes estimates a snapshot's records: from the largest ids (or SQLite's
// row ids), upper bounds unless records were deleted; PostgreSQL's users
// and memberships from its statistics, 0 where it has none yet.
type Sizes struct {
	Tokens, Grants, Users, Memberships int
}

// Visitor receives every record of a snapshot. A nil field skips that kind.
type Visitor struct {
	// Sizes, when set, is called once before any record with estimates of
	// how many records follow, so that the receiver can size its tables.
	Sizes func(Sizes)
	// Mark, when set, is called once before any record with the Mark of
	// the snapshot (its last change and the store's id), for ChangesSince.
	Mark       func(Mark)
	User       func(User) error
	Membership func(Membership) error
	Repository func(Repository) error
	Token      func(Token) error
	Grant      func(Grant) error // the current grant of each (token, org)
	// EveryRequest lets a store pass Grant every request of a (token, org),
	// in id order, so that the current grant comes last: the receiver must
	// keep the last one of each. Both stores do, where that reads faster
	// than the current grants alone (SQLite: a plain scan instead of a
	// look-up per row; PostgreSQL: a primary-key scan instead of a sort).
	EveryRequest bool
}

// Reader is what a sidecar's in-memory index needs from a store: one
// consistent snapshot at start, then the changes after it.
type Reader interface {
	// Load streams every record to v from one consistent snapshot and
	// returns the change-log sequence number that snapshot reflects.
	Load(ctx context.Context, v Visitor) (seq int64, err error)
	// ChangesSince returns at most limit changes with Seq > m.Seq, in
	// order; ErrChangesPruned when the log no longer holds all of them, and
	// ErrStoreReplaced when the store is not the one m was read from
	// (Visitor.Mark).
	ChangesSince(ctx context.Context, m Mark, limit int) ([]Change, error)
	// Wake returns a channel that receives a value when the store may have
	// changed (another process wrote to it). It is closed when ctx ends.
	Wake(ctx context.Context) <-chan struct{}

	// Point reads, used to apply a change. ok is false when the record is gone.
	User(ctx context.Context, login string) (u User, ok bool, err error)
	Membership(ctx context.Context, user, org string) (m Membership, ok bool, err error)
	Repository(ctx context.Context, owner, name string) (r Repository, ok bool, err error)
	Token(ctx context.Context, id int64) (t Token, ok bool, err error)
	Grant(ctx context.Context, tokenID int64, org string) (g Grant, ok bool, err error)

	// RowCounts counts the rows of the tables Load reads, with the
	// change log's last number, in one statement (one snapshot, one round
	// trip). A follower that loaded a store restored table by table
	// compares them with what its load passed (the index does, for a while
	// after a reload): a table filled since, by COPY, logged no change.
	RowCounts(ctx context.Context) (RowCounts, error)
}

// RowCounts is how many rows the tables Load reads hold, and the change
// log's last number, from one snapshot. Load passes every one of these rows,
// unfiltered: Requests is what it passes to Visitor.Grant with EveryRequest
// set (every request, not only each (token, org)'s current grant).
type RowCounts struct {
	Seq                                                int64
	Users, Memberships, Repositories, Tokens, Requests int64
}

// The times the store keeps: it writes them as nanoseconds since 1970 in a
// 64-bit integer, which ends in April 2262. A time outside would be
// written as another one (2300 as 1715), so it is refused instead.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckTime refuses a time of field outside MinTime and MaxTime.
func CheckTime(field string, t time.Time) error {
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return fmt.Errorf("%s: %s is outside the times the store keeps (from 1970-01-01 to before 2262-01-01)", field, t.UTC().Format(time.RFC3339))
	}
	return nil
}
