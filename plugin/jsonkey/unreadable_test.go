package jsonkey

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestUnreadable(t *testing.T) {
	for _, tc := range []struct {
		note, body string
		at         int
		what       string
	}{
		{note: "none", body: `{"name": "ci \u00e9 é \ud83d\ude00 😀"}`, at: -1},
		{note: "a lone high surrogate", body: `{"name": "\ud800"}`, at: 10, what: `a lone UTF-16 surrogate, \ud800`},
		{note: "a lone low surrogate, in capitals", body: `{"name": "\uDC00"}`, at: 10, what: `a lone UTF-16 surrogate, \uDC00`},
		{note: "a byte that is not UTF-8", body: "{\"name\": \"ci\xff\"}", at: 12, what: "a byte that is not UTF-8, 0xff"},
		{note: "a sequence cut short", body: "{\"name\": \"é\xc3\"}", at: 12, what: "a byte that is not UTF-8, 0xc3"},
		{note: "an encoded surrogate", body: "{\"name\": \"\xed\xa0\x80\"}", at: 10, what: "a byte that is not UTF-8, 0xed"},
		{note: "the surrogate first", body: "{\"a\": \"\\udc00\", \"b\": \"\xff\"}", at: 7, what: `a lone UTF-16 surrogate, \udc00`},
		{note: "the byte first", body: "{\"a\": \"\xff\", \"b\": \"\\udc00\"}", at: 7, what: "a byte that is not UTF-8, 0xff"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if !json.Valid([]byte(tc.body)) {
				t.Fatalf("not JSON: %q", tc.body)
			}
			for _, got := range [][2]any{pair(Unreadable(tc.body)), pair(Unreadable([]byte(tc.body)))} {
				if got != [2]any{tc.at, tc.what} {
					t.Fatalf("got %v, want %d %q", got, tc.at, tc.what)
				}
			}
		})
	}
}

func pair(at int, what string) [2]any { return [2]any{at, what} }

// A text with neither is read without an allocation.
func TestUnreadableDoesNotAllocate(t *testing.T) {
	body := []byte(`{"reason": "` + strings.Repeat(`left é \u00e9 😀 `, 100) + `"}`)
	text := string(body)
	if n := testing.AllocsPerRun(100, func() {
		if at, _ := Unreadable(body); at != -1 {
			t.Fatal("found one")
		}
		if at, _ := Unreadable(text); at != -1 {
			t.Fatal("found one")
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestPath(t *testing.T) {
	const classic = "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"
	for _, tc := range []struct {
		note, body, mark string // mark: the text whose first byte is asked about
		path             string
		key              bool
	}{
		{note: "the top-level string", body: `"x"`, mark: `x`, path: ""},
		{note: "a value", body: `{"a": 1, "name": "x"}`, mark: `x`, path: "name"},
		{note: "a key", body: `{"a": 1, "nXme": 2}`, mark: `X`, path: "", key: true},
		{note: "a record's field", body: `{"users": [], "tokens": [{"name": "a"}, {"kind": "classic", "name": "X"}]}`, mark: `X`, path: "tokens[1].name"},
		{note: "a key of a nested object", body: `{"tokens": [{"permissions": {"contents": "read", "Xissues": "write"}}]}`, mark: `X`, path: "tokens[0].permissions", key: true},
		{note: "an array of strings", body: `{"owners": ["alice", "bob", "X"]}`, mark: `X`, path: "owners[2]"},
		{note: "arrays in arrays", body: `[[1, 2], [3, ["a", "X"]]]`, mark: `X`, path: "[1][1][1]"},
		{note: "after nested values", body: `{"a": {"b": [1, {"c": "d"}], "e": "f"}, "g": {"h": "X"}}`, mark: `X`, path: "g.h"},
		{note: "a key holding a token is not shown", body: `{"organizations": {"` + classic + `": {"owners": ["X"]}}}`, mark: `X`,
			path: "organizations.(40 characters, not shown: it looks like a personal access token).owners[0]"},
		{note: "not in a string", body: `{"a": 1234}`, mark: `3`, path: ""},
	} {
		t.Run(tc.note, func(t *testing.T) {
			at := strings.LastIndex(tc.body, tc.mark)
			path, key := Path(tc.body, at)
			if path != tc.path || key != tc.key {
				t.Fatalf("got %q %t, want %q %t", path, key, tc.path, tc.key)
			}
			if path, key := Path([]byte(tc.body), at); path != tc.path || key != tc.key {
				t.Fatalf("[]byte: got %q %t, want %q %t", path, key, tc.path, tc.key)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		note, body, err string
	}{
		{note: "none", body: "{\n  \"name\": \"\\ud83d\\ude00 é\"\n}"},
		{note: "a lone surrogate in a record's field",
			body: "{\n  \"tokens\": [\n    {\"name\": \"é\\ud800\"}\n  ]\n}",
			err:  `tokens[0].name: a lone UTF-16 surrogate, \ud800, at line 3, column 16: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
		{note: "a byte that is not UTF-8 in a key",
			body: "{\"organizations\": {\"octo\xff\": {}}}",
			err:  `organizations: a key with a byte that is not UTF-8, 0xff, at line 1, column 25: it would be read as U+FFFD; write the file in UTF-8`},
		{note: "the top-level value", body: `"\udfff"`,
			err: `a lone UTF-16 surrogate, \udfff, at line 1, column 2: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
		{note: "a key of the top-level object", body: `{"\udfff": 1}`,
			err: `a key with a lone UTF-16 surrogate, \udfff, at line 1, column 3: it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			err := Check([]byte(tc.body))
			if got := errString(err); got != tc.err {
				t.Fatalf("got  %s\nwant %s", got, tc.err)
			}
			if got := errString(Check(tc.body)); got != tc.err {
				t.Fatalf("string: got  %s\nwant %s", got, tc.err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A syntax error names the line and column of the character it is about,
// whether the text was read with Decode or token by token (which count
// Go's offset differently), and a text cut short says where it ends.
func TestLocated(t *testing.T) {
	decode := func(s string) error {
		var v any
		return json.NewDecoder(strings.NewReader(s)).Decode(&v)
	}
	tokens := func(s string) error {
		dec := json.NewDecoder(strings.NewReader(s))
		for { // every text below is invalid: Token fails before its end
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
	}
	for _, tc := range []struct {
		text, want string
	}{
		{"{\"a\": 1,\n \"users\":   [ x]}", "invalid character 'x' looking for beginning of value, at line 2, column 15"},
		{"{\"organizations\":\n  {bad}}", "invalid character 'b' looking for beginning of object key string, at line 2, column 4"},
		{"{\"users\": [\n  {\"login\": \"bob\"},\n", "unexpected EOF: the text ends at line 3, column 1, before its JSON value does"},
		{"  \n", "EOF: the text is empty"},
		{`{"é": ?}`, "invalid character '?' looking for beginning of value, at line 1, column 7"},
	} {
		for name, read := range map[string]func(string) error{"Decode": decode, "Token": tokens} {
			err := Located([]byte(tc.text), read(tc.text))
			if err == nil {
				t.Errorf("%s %q: no error", name, tc.text)
				continue
			}
			// The two readers word a few errors differently; where they
			// are is the point.
			got, want := err.Error(), tc.want
			if _, at, ok := strings.Cut(want, ", at line"); ok {
				if !strings.HasSuffix(got, ", at line"+at) {
					t.Errorf("%s %q: %s; want it at line%s", name, tc.text, got, at)
				}
				continue
			}
			if name == "Decode" && got != want {
				t.Errorf("%s %q: %s; want %s", name, tc.text, got, want)
			}
			if _, tail, _ := strings.Cut(want, ": "); !strings.HasSuffix(got, tail) {
				t.Errorf("%s %q: %s; want it to end %q", name, tc.text, got, tail)
			}
		}
	}
	other := errors.New("json: cannot unmarshal")
	if err := Located([]byte("{}"), other); err != other {
		t.Errorf("another error became %v", err)
	}
}

// FoldedTwiceAt gives the offset of the second key's opening quote, also
// past escaped quotes in the key, for Path and Position.
func TestFoldedTwiceAt(t *testing.T) {
	for _, tc := range []struct {
		text, first, second, path string
		at                        int
	}{
		{"{\"users\": [{\"login\": \"bob\"},\n {\"login\": \"a\", \"Login\": \"eve\"}]}", "login", "Login", "users[1]", 45},
		{`{"x":1,"x":2}`, "x", "x", "", 7},
		{`{"a": {"": 1, "": 2}}`, "", "", "a", 14},
		{`{"a\\\"b": 1, "A\\\"B": 2}`, `a\"b`, `A\"B`, "", 14},
	} {
		first, second, at, found := FoldedTwiceAt([]byte(tc.text))
		if !found || first != tc.first || second != tc.second || at != tc.at {
			t.Errorf("%s: %q %q at %d (%v); want %q %q at %d", tc.text, first, second, at, found, tc.first, tc.second, tc.at)
			continue
		}
		if path, key := Path(tc.text, at); path != tc.path || !key {
			t.Errorf("%s: path %q (key %v); want %q", tc.text, path, key, tc.path)
		}
	}
	if _, _, at, found := FoldedTwiceAt([]byte(`{"a": 1, "b": {"a": 2}}`)); found || at != -1 {
		t.Errorf("keys in two objects: found at %d", at)
	}
}
