package jsonkey

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLoneSurrogate(t *testing.T) {
	long := `{"name": "` + strings.Repeat("x", 4096) + `"}`
	for _, tc := range []struct {
		note, body string
		want       int
	}{
		{note: "no escape", body: `{"name": "ci"}`, want: -1},
		{note: "other escapes", body: `{"name": "a\"b\\c\/d\n\u00e9\u005f\uFFFD\ud7ff\ue000"}`, want: -1},
		{note: "a pair", body: `{"name": "\ud83d\ude00"}`, want: -1},
		{note: "a pair in capitals", body: `{"name": "\uD83D\uDE00"}`, want: -1},
		{note: "an escaped backslash before ud800", body: `{"name": "\\ud800"}`, want: -1},
		{note: "an escaped backslash, then a pair", body: `{"name": "\\\ud800\udc00"}`, want: -1},
		{note: "a long body without one", body: long, want: -1},
		{note: "a lone high surrogate", body: `{"name": "\ud800"}`, want: 10},
		{note: "a lone low surrogate", body: `{"name": "\udc00x"}`, want: 10},
		{note: "in capitals", body: `{"name": "\uDBFF"}`, want: 10},
		{note: "a high surrogate before a letter", body: `{"name": "\ud800x\udc00"}`, want: 10},
		{note: "two high surrogates, then a low", body: `{"name": "\ud800\ud800\udc00"}`, want: 10},
		{note: "a low one before a high one", body: `{"name": "\udc00\ud800"}`, want: 10},
		{note: "after a pair", body: `{"name": "\ud83d\ude00\ude00"}`, want: 22},
		{note: "after an escaped backslash", body: `{"name": "\\\ud800"}`, want: 12},
		{note: "in a key", body: `{"a\udfff": 1}`, want: 3},
		{note: "at the end of the text", body: `"\ud800"`, want: 1},
	} {
		t.Run(tc.note, func(t *testing.T) {
			if !json.Valid([]byte(tc.body)) {
				t.Fatalf("not JSON: %s", tc.body)
			}
			if got := LoneSurrogate(tc.body); got != tc.want {
				t.Fatalf("string: got %d, want %d", got, tc.want)
			}
			if got := LoneSurrogate([]byte(tc.body)); got != tc.want {
				t.Fatalf("[]byte: got %d, want %d", got, tc.want)
			}
			// Go's reader keeps U+FFFD where, and only where, it finds one.
			var v any
			if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(v); strings.Contains(string(b), "\ufffd") != (tc.want >= 0) && !strings.Contains(tc.body, `\uFFFD`) {
				t.Fatalf("encoding/json reads %s as %s", tc.body, b)
			}
		})
	}
}

// A body without a surrogate escape is read once and costs no allocation.
func TestLoneSurrogateDoesNotAllocate(t *testing.T) {
	body := []byte(`{"action": "deny", "reason": "` + strings.Repeat(`left \u00e9 `, 100) + `"}`)
	text := string(body)
	if n := testing.AllocsPerRun(100, func() {
		if LoneSurrogate(body) != -1 || LoneSurrogate(text) != -1 {
			t.Fatal("found one")
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func BenchmarkLoneSurrogate(b *testing.B) {
	body := []byte(`{"pat_request_ids": [1, 2, 3], "action": "deny", "reason": "` + strings.Repeat("x", 1000) + `"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		LoneSurrogate(body)
	}
}
