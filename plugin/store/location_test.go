package store

import "testing"

func TestCheckLocation(t *testing.T) {
	for _, tc := range []struct {
		note, location, err string
	}{
		{note: "a file", location: "pat.db"},
		{note: "a path", location: "/var/lib/opa-pat/pat.db"},
		{note: "a path with a colon", location: "./a:b/pat.db"},
		{note: "a path that holds ://", location: "./x://y.db"},
		{note: "postgres", location: "postgres://u:pw@db/pat"},
		{note: "postgresql", location: "postgresql://u:pw@db/pat"},
		{note: "mysql", location: "mysql://u:hunter2@h/db", err: `"mysql://u:xxxxx@h/db" is neither a postgres:// URL nor a file path`},
		{note: "sqlite URL", location: "sqlite:///var/lib/pat.db", err: `"sqlite:///var/lib/pat.db" is neither a postgres:// URL nor a file path`},
		{note: "a password parameter", location: "redis://h/0?password=hunter2", err: `"redis://h/0?password=xxxxx" is neither a postgres:// URL nor a file path`},
		{note: "libpq's key=value form, which would name a file after its password", location: "host=db user=u password=S3cretPw_xyz dbname=pat",
			err: `"host=db user=u password=xxxxx dbname=pat" is a key=value connection string; give the database as a postgres:// URL (docs/postgres.md)`},
		{note: "a path with an = in it", location: "./runs/user=ci/pat.db"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			err := CheckLocation(tc.location)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("CheckLocation(%q) = %v; want %q", tc.location, err, tc.err)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ note, in, want string }{
		{note: "one line", in: "reading schema version: timeout", want: "reading schema version: timeout"},
		{note: "pgx's attempts, alike", in: "failed to connect to `user=u database=d`:\n\t127.0.0.1:1 (127.0.0.1): dial error: refused\n\t127.0.0.1:1 (127.0.0.1): dial error: refused",
			want: "failed to connect to `user=u database=d`: 127.0.0.1:1 (127.0.0.1): dial error: refused"},
		{note: "two hosts", in: "failed to connect to `user=u database=d`:\n\t[::1]:1 (localhost): dial error: refused\n\t127.0.0.1:1 (localhost): dial error: refused",
			want: "failed to connect to `user=u database=d`: [::1]:1 (localhost): dial error: refused; 127.0.0.1:1 (localhost): dial error: refused"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if got := oneLine(tc.in); got != tc.want {
				t.Fatalf("oneLine = %q; want %q", got, tc.want)
			}
		})
	}
}
