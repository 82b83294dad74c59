package plugin

import (
	"errors"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/logging"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// followLog tells the operator what the index's follower meets, whatever the
// store's connection reports (a SQLite read that fails, a PostgreSQL pool
// that cannot connect while the listener's connection stays up):
//   - a warning when its catch-ups start failing, and again when the error
//     changes, naming the time the index's data is from (its last catch-up)
//     and the bound past which token decisions deny;
//   - an info line when one succeeds again, naming how long the index was
//     behind, after an outage of any length.
//
// The follower's goroutine calls failed and caughtUp; the status's
// (watchHealth) calls fellBehind.
type followLog struct {
	mu     sync.Mutex
	logger logging.Logger
	// where names the store, without its password (describeStore).
	where string
	// bound is store.max_staleness.
	bound time.Duration
	// behind is the error last logged, "" while the index follows.
	behind string
	// asOf is when the index last caught up before its catch-ups failed.
	asOf time.Time
}

// failed is called with the error of a catch-up that failed and the time
// of the index's last catch-up (index.CurrentAt).
func (l *followLog) failed(err error, currentAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := err.Error()
	if msg == l.behind {
		return
	}
	if l.behind == "" {
		l.asOf = currentAt
	}
	l.behind = msg
	if errors.Is(err, store.ErrStoreOlder) {
		// The index may hold tokens the restored store does not: it
		// answers no token decision (index.Index.Current), bound or not.
		l.logger.Error("Token store %s: the index cannot follow the store: %s; token decisions deny at once (fail closed) until then.", l.where, msg)
		return
	}
	l.logger.Warn("Token store %s: the index is behind: %s; answering from the index as of its last catch-up at %s until store.max_staleness (%s) has passed since then.",
		l.where, msg, l.asOf.UTC().Format(time.RFC3339), l.bound)
}

// caughtUp is called after a catch-up that succeeded, with the time it
// started (index.CurrentAt).
func (l *followLog) caughtUp(currentAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.behind == "" {
		return
	}
	l.behind = ""
	l.logger.Info("Token store %s: the index has caught up; it was behind for %s, since its catch-up at %s.",
		l.where, currentAt.Sub(l.asOf).Round(time.Millisecond), l.asOf.UTC().Format(time.RFC3339))
}

// waitingMark is followLog.behind while the status warns that a read of the
// store has not returned (fellBehind): no error was met, and none equals it.
const waitingMark = "\x00waiting"

// fellBehind is called when the status warns that the index is behind
// while a read has not returned (watchHealth logs that warning), with the
// time of the index's last catch-up: the follower, stuck in that read, has
// met no error, and caughtUp says when the index has caught up.
func (l *followLog) fellBehind(currentAt time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.behind == "" {
		l.behind, l.asOf = waitingMark, currentAt
	}
}
