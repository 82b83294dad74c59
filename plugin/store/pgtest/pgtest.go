// Package pgtest gives tests a PostgreSQL database of their own: created on
// the server that OPA_PAT_TEST_POSTGRES_DSN names (the machine's local server
// by default), dropped when the test ends, and skipped with a clear message
// when no server answers.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server the tests use unless OPA_PAT_TEST_POSTGRES_DSN
// names another (.ci/postgres.sh makes sure it runs).
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN is the server's DSN: OPA_PAT_TEST_POSTGRES_DSN, or DefaultDSN.
func BaseDSN() string {
	if base := os.Getenv("OPA_PAT_TEST_POSTGRES_DSN"); base != "" {
		return base
	}
	return DefaultDSN
}

// Database creates an empty database named prefix plus a random suffix and
// returns its DSN, or skips the test when no server answers. The database is
// dropped when the test ends, retrying for a while in case the test stopped
// and restarted the server.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Skipf("no PostgreSQL server answers at %s (set OPA_PAT_TEST_POSTGRES_DSN, or run .ci/postgres.sh): %v", base, err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() { drop(t, base, name) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func drop(t testing.TB, base, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *pgx.Conn
	var err error
	for range 60 {
		if c, err = pgx.Connect(ctx, base); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Errorf("dropping database %s: %v", name, err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		t.Errorf("dropping database %s: %v", name, err)
	}
}

// Exec runs statements, in order, on a connection of its own to dsn (as a
// role, on a database, that the store's code does not use): the test fails
// at the first that fails.
func Exec(t testing.TB, dsn string, statements ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for _, s := range statements {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Role creates a login role named wt_pgrole_ plus a random suffix, with no
// privileges, and returns its name, or skips the test when no server
// answers. The role is dropped when the test ends, after the databases the
// test created afterwards (Database), which may have granted it rights.
func Role(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Skipf("no PostgreSQL server answers at %s (set OPA_PAT_TEST_POSTGRES_DSN, or run .ci/postgres.sh): %v", base, err)
	}
	c.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	role := "wt_pgrole_" + hex.EncodeToString(b[:])
	Exec(t, base, `CREATE ROLE `+role+` LOGIN`)
	t.Cleanup(func() { Exec(t, base, `DROP ROLE IF EXISTS `+role) })
	return role
}

// As returns dsn with role as its user and no password (the test server
// trusts local connections).
func As(t testing.TB, dsn, role string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}
