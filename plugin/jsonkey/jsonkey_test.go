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
