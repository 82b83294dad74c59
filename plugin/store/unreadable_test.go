package store

import (
	"strings"
	"testing"
)

// An import file with a lone UTF-16 surrogate escape, or a byte that is not
// UTF-8, is refused where it is, and nothing of the file is written: Go's
// reader would import U+FFFD in its place, silently. Records before it
// count for nothing.
func TestImportRefusesWhatGoReadsAsFFFD(t *testing.T) {
	db := openTest(t)
	before := `{"users": [{"login": "bob", "managed_by": null}],
"repositories": [{"owner": "octo-org", "name": "app", "visibility": "private"}],
"tokens": [{"token": "` + rawClassic + `", "user": "bob", "scopes": [], "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "revoked": false, `
	for _, tc := range []struct {
		note, world, err string
	}{
		{note: "a lone high surrogate in a name", world: before + `"name": "ci\ud800"}]}`,
			err: `tokens[0].name: a lone UTF-16 surrogate, \ud800, at line 3, column 182: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
		{note: "a lone low surrogate in a scope", world: strings.Replace(before, `"scopes": []`, `"scopes": ["repo", "\udc00"]`, 1) + `"name": "ci"}]}`,
			err: `tokens[0].scopes[1]: a lone UTF-16 surrogate, \udc00, at line 3, column 101: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
		{note: "a byte that is not UTF-8 in a login", world: strings.Replace(before, `"bob", "managed_by"`, "\"b\xf6b\", \"managed_by\"", 1) + `"name": "ci"}]}`,
			err: `users[0].login: a byte that is not UTF-8, 0xf6, at line 1, column 24: it would be read as U+FFFD; write the file in UTF-8`},
		{note: "in an unknown field's key", world: before + `"name": "ci", "te\udfffam": 1}]}`,
			err: `tokens[0]: a key with a lone UTF-16 surrogate, \udfff, at line 3, column 188: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, err := importJSON(t, db, tc.world)
			if err == nil || err.Error() != tc.err {
				t.Fatalf("err = %v\nwant  %s", err, tc.err)
			}
			if empty, err := db.Empty(t.Context()); err != nil || !empty {
				t.Fatalf("the store holds records after a refused import (empty %t, %v)", empty, err)
			}
		})
	}
	// A pair, an escaped character and UTF-8 are imported as written.
	if _, err := importJSON(t, db, before+`"name": "ci \ud83d\ude80 \u00e9 é"}]}`); err != nil {
		t.Fatal(err)
	}
	toks, err := db.ListTokens(t.Context(), TokenFilter{})
	if err != nil || len(toks) != 1 || toks[0].Name != "ci 🚀 é é" {
		t.Fatalf("tokens = %+v, %v", toks, err)
	}
}
