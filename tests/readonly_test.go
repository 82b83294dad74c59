package tests

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCLIReadOnlyStore runs the CLI as another user (nobody) on a store it
// may read but not write, as an operator reads the store of a sidecar that
// runs as a service user: first a file mode 0444 in a directory it may not
// write either, then a file it may write in such a directory (SQLite keeps
// its -wal and -shm files beside the store). Commands that only read answer
// as they do for the owner; commands that write fail with one line naming
// the store and saying why it is read-only; nothing is created or changed.
// Root may write any file, so the test needs root to become another user,
// and skips without it.
func TestCLIReadOnlyStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the CLI as the user nobody, which needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, err1 := strconv.ParseUint(nobody.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(nobody.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Skipf("user nobody: %v", err)
	}
	// t.TempDir's parents are private to root: the test's files live in a
	// directory nobody may read.
	base, err := os.MkdirTemp("", "opa-pat-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	bin := filepath.Join(base, "opa-pat")
	if err := os.Link(binary(t), bin); err != nil {
		copyFile(t, binary(t), bin)
	}
	world := writeFile(t, base, "world.json", cliWorld)
	settings := writeFile(t, base, "settings.json", `{}`)
	dir := filepath.Join(base, "store")
	db := filepath.Join(dir, "pat.db")
	for _, p := range []string{base, world, settings} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cliOK(t, "store", "import", "--store", db, world)
	before := cliOK(t, "store", "export", "--store", db)

	asNobody := func(args ...string) cliResult {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = base
		cmd.Env = append(os.Environ(), "HOME="+base)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return runCommand(t, cmd)
	}
	reads := [][]string{
		{"token", "list"}, {"token", "list", "--all", "--user", "BOB", "--output", "json"}, {"requests", "list", "--org", "Octo-Org"},
		{"requests", "list", "--history", "--output", "json"}, {"audit", "list"}, {"store", "export"}, {"store", "settings"},
	}
	writes := [][]string{
		{"token", "revoke", "1"}, {"requests", "approve", "--org", "octo-org", "1"}, {"requests", "create", "--org", "octo-org", "--token", "1"},
		{"token", "create", "--user", "bob", "--kind", "classic", "--scope", "repo"}, {"store", "import", world},
		{"store", "settings", settings}, {"store", "prune-changes", "--keep", "1"},
	}
	for _, tc := range []struct {
		note  string
		setup func() error
		why   string
	}{
		{"file 0444", func() error { return os.Chmod(db, 0o444) },
			"the file cannot be written (permission denied to this user)"},
		{"directory", func() error { return errors.Join(os.Chmod(db, 0o644), os.Chown(db, int(uid), int(gid))) },
			`its directory "` + dir + `" cannot be written (permission denied to this user), where SQLite keeps pat.db-wal and pat.db-shm beside the file`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if err := tc.setup(); err != nil {
				t.Fatal(err)
			}
			for _, args := range reads {
				args = append(args, "--store", db)
				owner, other := cliOK(t, args...), asNobody(args...)
				if other.code != 0 || other.stdout != owner || other.stderr != "" {
					t.Errorf("opa-pat %s as nobody: exit %d, stderr %q\nstdout %s\nwant the owner's\n%s", strings.Join(args, " "), other.code, other.stderr, other.stdout, owner)
				}
			}
			for _, args := range writes {
				args = append(args, "--store", db)
				res := asNobody(args...)
				if want := `error: store "` + db + `" is read-only: ` + tc.why + "; nothing was written\n"; res.code != 1 || res.stderr != want || res.stdout != "" {
					t.Errorf("opa-pat %s as nobody: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(args, " "), res.code, res.stdout, res.stderr, want)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !slices.Equal(names, []string{"pat.db"}) {
				t.Errorf("the store's directory holds %v; want pat.db alone", names)
			}
			if after := cliOK(t, "store", "export", "--store", db); after != before {
				t.Errorf("the store changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
	// A missing store is an error for a command that reads, which creates
	// nothing.
	missing := filepath.Join(dir, "typo.db")
	if res := asNobody("token", "list", "--store", missing); res.code != 1 ||
		res.stderr != `error: opening store "`+missing+`": no store there: stat `+missing+": no such file or directory\n" {
		t.Errorf("token list of a missing store: exit %d, stderr %q", res.code, res.stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
