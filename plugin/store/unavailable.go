package store

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says that the store cannot be reached
// now, as opposed to a statement it refused: a PostgreSQL server that
// cannot be connected to (down, the database missing or renamed, too many
// connections, starting up or shutting down), a connection lost, a SQLite
// file replaced under the process. Whoever answers a client (the admin
// API) says the store is unavailable and to retry, rather than that it
// failed.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrFileChanged) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if errors.As(err, new(*pgconn.ConnectError)) || errors.As(err, new(*net.OpError)) {
		return true
	}
	switch code := pgCode(err); {
	case strings.HasPrefix(code, "08"): // connection_exception
		return true
	case code == "57P01", code == "57P02", code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return true
	case code == "3D000", code == "53300": // invalid_catalog_name (the database is gone), too_many_connections
		return true
	}
	return false
}
