// Package jsonkey finds what JSON readers read differently in a JSON value:
// a key given twice in one object (Repeated), and an escape of a lone UTF-16
// surrogate (LoneSurrogate). Readers disagree on such a value: of two
// values for a key Go's encoding/json and most others keep the last, some
// keep the first; a lone surrogate Go reads as U+FFFD, others keep it or
// refuse the text. A gate that reads one while the upstream reads the other
// decides on a request the upstream never sees. The Envoy gate
// (plugin/extauthz) reads such a body as none; the admin API (plugin/admin)
// refuses it. Check names the first lone surrogate, or byte that is not
// UTF-8, of a file (an import, settings, a bundle manifest) by its path,
// line and column: Go's reader would keep U+FFFD in its place, silently.
package jsonkey

import (
	"encoding/json"
	"io"
	"slices"
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
	type frame struct {
		object  bool
		wantKey bool // an object's next token is a key
		keys    []string
		set     map[string]struct{}
	}
	var stack []frame
	dec := json.NewDecoder(r)
	dec.UseNumber()
	for {
		t, err := dec.Token()
		if err != nil {
			return "", false
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
				if top.set != nil {
					if _, ok := top.set[k]; ok {
						return k, true
					}
					top.set[k] = struct{}{}
				} else {
					if slices.Contains(top.keys, k) {
						return k, true
					}
					top.keys = append(top.keys, k)
					if len(top.keys) > smallObject {
						top.set = make(map[string]struct{}, 2*len(top.keys))
						for _, k := range top.keys {
							top.set[k] = struct{}{}
						}
						top.keys = nil
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
