// Package jsonkey finds what JSON readers read differently in a JSON value:
// a key given twice in one object (Repeated), two keys of one object that
// differ only in case (FoldedTwice), and an escape of a lone UTF-16
// surrogate (LoneSurrogate). Readers disagree on such a value: of two
// values for a key Go's encoding/json and most others keep the last, some
// keep the first; a lone surrogate Go reads as U+FFFD, others keep it or
// refuse the text; of two keys that differ only in case Go binds the last to
// a struct field, where others read two keys. A gate that reads one while the upstream reads the other
// decides on a request the upstream never sees. The Envoy gate
// (plugin/extauthz) reads a body with a key twice or a lone surrogate as
// none; the admin API (plugin/admin) refuses all three. Check names the first lone surrogate, or byte that is not
// UTF-8, of a file (an import, settings, a bundle manifest) by its path,
// line and column: Go's reader would keep U+FFFD in its place, silently.
package jsonkey

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// smallObject is how many keys an object keeps in a slice before it moves
// them to a map: most objects have a handful, and a slice of them is
// cheaper than a map; a large one (a 1 MiB body holds some 100,000 keys)
// would make the slice quadratic.
const smallObject = 16

// Repeated returns the first key that an object of the JSON value r holds
// twice, compared once decoded ("op" and "\u006fop" are one key), and
// whether there is one. r must hold one valid JSON value; anything it
// cannot read ends the search with none found.
func Repeated(r io.Reader) (string, bool) {
	_, key, _, found := clash(r, nil)
	return key, found
}

// FoldedTwice returns the first two keys of one object of the JSON value r
// that are equal without regard to case as Go's encoding/json compares a
// key with a struct field's name (Fold: "action", "Action" and "ACTION";
// "reason" and "rea\u017fon", whose long s folds to s), in the order they
// come, and whether there are two. A decoder that binds keys so keeps the
// last of them, a reader that compares keys exactly both, so the two read
// different values. Keys repeated exactly are Repeated's. r must hold one
// valid JSON value; anything it cannot read ends the search with none found.
func FoldedTwice(r io.Reader) (first, second string, found bool) {
	first, second, _, found = clash(r, Fold)
	return first, second, found
}

// FoldedTwiceAt is FoldedTwice over the JSON text s, with the offset in s
// of the second key's opening quote, for Path and Position.
func FoldedTwiceAt(s []byte) (first, second string, at int, found bool) {
	first, second, end, found := clash(bytes.NewReader(s), Fold)
	if !found {
		return "", "", -1, false
	}
	// end is just after the key's closing quote: its opening one is the
	// first quote before that is not escaped (an even run of backslashes
	// before it).
	at = int(end) - 2
	for ; at > 0; at-- {
		if s[at] != '"' {
			continue
		}
		n := 0
		for i := at - 1; i >= 0 && s[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			break
		}
	}
	return first, second, at, true
}

// Fold is a key as Go's encoding/json compares it with a struct field's
// name, without regard to case: ASCII letters in upper case, any other
// character the smallest of the characters it folds to
// (unicode.SimpleFold). Fold(a) == Fold(b) exactly when strings.EqualFold(a, b).
func Fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clash returns the first two keys of one object of the JSON value r that
// are one key once mapped by norm (nil: as decoded), the offset just after
// the second, and whether there are two.
func clash(r io.Reader, norm func(string) string) (first, second string, end int64, found bool) {
	type frame struct {
		object  bool
		wantKey bool     // an object's next token is a key
		keys    []string // the keys so far, mapped by norm
		given   []string // the keys as given, when norm is set
		set     map[string]string
	}
	var stack []frame
	dec := json.NewDecoder(r)
	dec.UseNumber()
	for {
		t, err := dec.Token()
		if err != nil {
			return "", "", 0, false
		}
		d, delim := t.(json.Delim)
		if delim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if top.wantKey {
				k, _ := t.(string)
				nk := k
				if norm != nil {
					nk = norm(k)
				}
				if top.set != nil {
					if was, ok := top.set[nk]; ok {
						return was, k, dec.InputOffset(), true
					}
					top.set[nk] = k
				} else {
					if i := slices.Index(top.keys, nk); i >= 0 {
						if norm == nil {
							return k, k, dec.InputOffset(), true
						}
						return top.given[i], k, dec.InputOffset(), true
					}
					top.keys = append(top.keys, nk)
					if norm != nil {
						top.given = append(top.given, k)
					}
					if len(top.keys) > smallObject {
						top.set = make(map[string]string, 2*len(top.keys))
						for i, nk := range top.keys {
							if norm != nil {
								top.set[nk] = top.given[i]
							} else {
								top.set[nk] = nk
							}
						}
						top.keys, top.given = nil, nil
					}
				}
				top.wantKey = false
				continue
			}
			top.wantKey = true
		}
		if delim {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
		}
	}
}
