package jsonkey

// LoneSurrogate returns the offset in the JSON text s of the first \u
// escape of a UTF-16 surrogate (U+D800-U+DFFF) that is not one half of a
// pair, a high surrogate (D800-DBFF) written right before a low one
// (DC00-DFFF), or -1 when there is none. Readers disagree on such an
// escape: Go's encoding/json reads it as U+FFFD without an error, others
// keep the surrogate, drop it or refuse the text, so a name or a key
// ("a\ud800", "a\udc00") would not be what was sent, nor the same for the
// gate and the upstream. s must be valid JSON (json.Valid): its only
// backslashes are then those that begin escapes in strings.
//
// It reads s once, without allocating, for a \u escape whose first hex
// digit is d or D and second 8 to f (the surrogates); only a text with
// one is read again, escape by escape.
func LoneSurrogate[T ~string | ~[]byte](s T) int {
	if !maySurrogate(s) {
		return -1
	}
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != 'u' {
			i += 2 // \" \\ \/ \b \f \n \r \t: one character
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			return -1 // not JSON, against the precondition
		}
		at := i
		i += 6
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return at // a low surrogate first, or alone
		case r >= 0xd800 && r <= 0xdbff:
			if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if lo, ok := hex4(s, i+2); ok && lo >= 0xdc00 && lo <= 0xdfff {
					i += 6 // a pair: one character beyond the BMP
					continue
				}
			}
			return at
		}
	}
	return -1
}

// maySurrogate reports whether s holds a \u escape of a surrogate, or
// text that reads as one (an escaped backslash before "ud800").
func maySurrogate[T ~string | ~[]byte](s T) bool {
	for i := 0; i+3 < len(s); i++ {
		if s[i] == '\\' && s[i+1] == 'u' && (s[i+2] == 'd' || s[i+2] == 'D') {
			switch c := s[i+3]; {
			case c >= '8' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
				return true
			}
		}
	}
	return false
}

// hex4 reads the four hex digits of a \u escape at s[i:].
func hex4[T ~string | ~[]byte](s T, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		c := s[k]
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
