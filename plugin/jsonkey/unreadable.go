package jsonkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// Unreadable returns the offset in the JSON text s of the first thing in
// it that Go's encoding/json (and OPA's reader, built on it) reads as
// U+FFFD without an error, and what it is, for a message: a byte that is
// not UTF-8 ("a byte that is not UTF-8, 0xff") or the \u escape of a lone
// UTF-16 surrogate (LoneSurrogate: "a lone UTF-16 surrogate, \ud800");
// -1 and "" when there is none. A file that holds one would be read as
// something else than it says, silently. s must be valid JSON (json.Valid):
// both can then only be in a string, a key or a value.
func Unreadable[T ~string | ~[]byte](s T) (at int, what string) {
	bad := notUTF8(s)
	if sur := LoneSurrogate(s); sur >= 0 && (bad < 0 || sur < bad) {
		return sur, "a lone UTF-16 surrogate, " + string(s[sur:sur+6])
	}
	if bad >= 0 {
		return bad, fmt.Sprintf("a byte that is not UTF-8, %#02x", s[bad])
	}
	return -1, ""
}

// notUTF8 is the offset of the first byte of s that does not begin a
// valid UTF-8 sequence, or -1. It does not allocate.
func notUTF8[T ~string | ~[]byte](s T) int {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// Path returns where in the JSON text s the byte at offset at lies, when
// it lies in a string: the path of the value that string is, or of the
// object whose key it is, written as "tokens[3].name" ("" for the
// top-level value), and whether it is a key. A key on the path that looks
// like a personal access token is described, not shown (token.Quote). s
// must be valid JSON; an offset in no string gives "" and false.
func Path[T ~string | ~[]byte](s T, at int) (path string, key bool) {
	type frame struct {
		object  bool
		wantKey bool   // an object's next token is a key
		key     string // an object's current key
		n       int    // an array's values so far
	}
	var stack []frame
	where := func(frames []frame) string {
		var b strings.Builder
		for _, f := range frames {
			if !f.object {
				fmt.Fprintf(&b, "[%d]", f.n-1)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			if token.Hidden(f.key) {
				b.WriteString(token.Quote(f.key))
			} else {
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(strings.NewReader(string(s)))
	dec.UseNumber()
	for {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		// The decoder has read the token whole: a string that ends past at
		// holds it, since whatever came before ended before at.
		end := int(dec.InputOffset())
		str, isString := t.(string)
		d, delim := t.(json.Delim)
		if delim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.object && top.wantKey:
				if end > at {
					return where(stack[:n-1]), true
				}
				top.key, top.wantKey = str, false
				continue
			case top.object:
				top.wantKey = true
			default:
				top.n++
			}
		}
		if isString && end > at {
			return where(stack), false
		}
		if delim {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
		}
	}
}

// UnreadableError names the first string of a JSON file that Go's reader
// would read as something else than it says (Unreadable): where it is, and
// what.
type UnreadableError struct {
	// Path is where the string is (Path): the value's path, or the path
	// of the object whose key it is when Key is set.
	Path string
	Key  bool
	// Offset is the byte's offset in the text; Line and Column are where
	// it is for an editor, from 1, Column in characters.
	Offset, Line, Column int
	// What is Unreadable's description; Surrogate tells a lone surrogate
	// from a byte that is not UTF-8.
	What      string
	Surrogate bool
}

func (e *UnreadableError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	if e.Key {
		b.WriteString("a key with ")
	}
	fmt.Fprintf(&b, "%s, at line %d, column %d: ", e.What, e.Line, e.Column)
	if e.Surrogate {
		b.WriteString("it stands for no character, and would be read as U+FFFD; write the character itself, or both halves of a surrogate pair")
	} else {
		b.WriteString("it would be read as U+FFFD; write the file in UTF-8")
	}
	return b.String()
}

// Check returns an *UnreadableError for the first thing in the JSON text
// s that Go's reader reads as U+FFFD (Unreadable), nil when there is none.
// s must be valid JSON.
func Check[T ~string | ~[]byte](s T) error {
	at, what := Unreadable(s)
	if at < 0 {
		return nil
	}
	path, key := Path(s, at)
	line, col := Position(s, at)
	return &UnreadableError{Path: path, Key: key, Offset: at, Line: line, Column: col, What: what, Surrogate: LoneSurrogate(s) == at}
}

// Position is where the byte at offset at of s is for an editor: its line
// and column, from 1, the column in characters.
func Position[T ~string | ~[]byte](s T, at int) (line, col int) {
	line, col = 1, 1
	at = min(at, len(s))
	for i := 0; i < at; {
		if s[i] == '\n' {
			line, col = line+1, 1
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, at)]))
		col++
		i += n
	}
	return line, col
}

// Located adds to a syntax error of encoding/json in reading the JSON text
// s where it is, as a line and a column (Position): Go's own message gives
// a byte offset at most, and the end of a text cut short only as "EOF" or
// "unexpected EOF". Any other error is returned as it is.
func Located(s []byte, err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		line, col := Position(s, syntaxErrorAt(s, se))
		return fmt.Errorf("%w, at line %d, column %d", err, line, col)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if len(bytes.TrimSpace(s)) == 0 {
			return fmt.Errorf("%w: the text is empty", err)
		}
		line, col := Position(s, len(s))
		return fmt.Errorf("%w: the text ends at line %d, column %d, before its JSON value does", err, line, col)
	}
	return err
}

// invalidCharacter is the character encoding/json names in a syntax error.
var invalidCharacter = regexp.MustCompile(`^invalid character ('(?:[^'\\]|\\.)+')`)

// syntaxErrorAt is the offset of the byte a syntax error is about. Go's
// Offset is the count of bytes read when the error was found, which
// Decoder.Decode counts after the invalid character and Decoder.Token
// before it, at the start of the value it read: the character the message
// names says where it is.
func syntaxErrorAt(s []byte, se *json.SyntaxError) int {
	at := min(int(se.Offset), len(s))
	m := invalidCharacter.FindStringSubmatch(se.Error())
	if m == nil {
		return at
	}
	c, err := strconv.Unquote(m[1])
	if err != nil || c == "" {
		return at
	}
	if at < len(s) && strings.HasPrefix(string(s[at:]), c) {
		return at
	}
	if back := at - len(c); back >= 0 && strings.HasPrefix(string(s[back:]), c) {
		return back
	}
	// Decoder.Token counts from where the value began: the character is
	// further on, after white space and the punctuation before the value.
	if i := bytes.Index(s[at:min(at+64, len(s))], []byte(c)); i >= 0 {
		return at + i
	}
	return at
}
