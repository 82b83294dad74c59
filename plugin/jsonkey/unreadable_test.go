package jsonkey

import (
	"encoding/json"
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
