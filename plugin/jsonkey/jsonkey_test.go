package jsonkey

import (
	"fmt"
	"strings"
	"testing"
)

func TestRepeated(t *testing.T) {
	many := func(n int, last string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d": %d, `, i, i)
		}
		b.WriteString(`"` + last + `": 0}`)
		return b.String()
	}
	for _, tc := range []struct {
		note, body, key string
		found           bool
	}{
		{note: "none", body: `{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}`},
		{note: "a key twice", body: `{"action": "deny", "action": "approve"}`, key: "action", found: true},
		{note: "once escaped", body: `{"op": 1, "\u006fp": 2}`, key: "op", found: true},
		{note: "in a nested object", body: `{"objects": [{"oid": "a"}, {"oid": "b", "size": 1, "oid": "c"}]}`, key: "oid", found: true},
		{note: "a key that is also a value", body: `{"a": "b", "b": "a"}`},
		{note: "the same key in sibling objects", body: `[{"a": 1}, {"a": 2}]`},
		{note: "not an object", body: `"a"`},
		{note: "many keys, none twice", body: many(1000, "z")},
		{note: "many keys, the last one twice", body: many(1000, "k999"), key: "k999", found: true},
		{note: "many keys, the first one twice", body: many(1000, "k0"), key: "k0", found: true},
		{note: "not JSON", body: `{"a": `},
	} {
		t.Run(tc.note, func(t *testing.T) {
			key, found := Repeated(strings.NewReader(tc.body))
			if key != tc.key || found != tc.found {
				t.Fatalf("got %q %t, want %q %t", key, found, tc.key, tc.found)
			}
		})
	}
}

func TestFoldedTwice(t *testing.T) {
	for _, tc := range []struct {
		note, body, first, second string
		found                     bool
	}{
		{note: "none", body: `{"action": "deny", "reason": "r", "b": {"action": 1}}`},
		{note: "one key in another case", body: `{"Action": "approve"}`},
		{note: "two keys, one in another case", body: `{"action": "deny", "Action": "approve"}`, first: "action", second: "Action", found: true},
		{note: "upper case first", body: `{"ACTION": "deny", "action": "approve"}`, first: "ACTION", second: "action", found: true},
		{note: "long s folds to s", body: `{"reason": "a", "rea\u017fon": "b"}`, first: "reason", second: "reaſon", found: true},
		{note: "Kelvin sign folds to k", body: `{"kind": "classic", "\u212aind": "fine_grained"}`, first: "kind", second: "\u212aind", found: true},
		{note: "in a nested object", body: `{"permissions": {"contents": "read", "Contents": "write"}}`, first: "contents", second: "Contents", found: true},
		{note: "in sibling objects", body: `[{"a": 1}, {"A": 2}]`},
		{note: "many keys", body: `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"K3":3}`,
			first: "k3", second: "K3", found: true},
	} {
		t.Run(tc.note, func(t *testing.T) {
			first, second, found := FoldedTwice(strings.NewReader(tc.body))
			if first != tc.first || second != tc.second || found != tc.found {
				t.Fatalf("got %q %q %t, want %q %q %t", first, second, found, tc.first, tc.second, tc.found)
			}
		})
	}
}

// Fold compares as strings.EqualFold, which Go's encoding/json binds keys
// with.
func TestFoldIsEqualFold(t *testing.T) {
	words := []string{"action", "Action", "ACTION", "reason", "reaſon", "REAſON", "kind", "\u212aind", "KIND", "straße", "STRASSE",
		"ǅ", "ǆ", "Ǆ", "σ", "ς", "Σ", "i", "I", "İ", "ı", "", "a", "b"}
	for _, a := range words {
		for _, b := range words {
			if got, want := Fold(a) == Fold(b), strings.EqualFold(a, b); got != want {
				t.Errorf("Fold(%q) == Fold(%q): %t, strings.EqualFold: %t", a, b, got, want)
			}
		}
	}
}
