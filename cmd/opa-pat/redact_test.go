package main

import (
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
	"github.com/opa-pat/opa-pat/plugin/token/tokentest"
)

func TestRedactLine(t *testing.T) {
	token.NotePrefixes(token.Prefixes{Classic: "acmepat", FineGrained: "acmefg_"})
	for _, tc := range []struct{ in, want string }{
		{`{"req_body":"{\"input\": {\"credential\": {\"token\": \"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\"}}}"}`,
			`{"req_body":"{\"input\": {\"credential\": {\"token\": \"ghp_[redacted]\"}}}"}`},
		{`token 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 here`,
			`token github_pat_[redacted] here`},
		{`custom prefix acp_4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO.`, `custom prefix acp_[redacted].`},
		{`"authorization": "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX3Rlc3Q="`, `"authorization": "Basic [redacted]"`},
		// Left alone: digests, ids, ordinary words.
		{`digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 id 1f0e4c9a-2b7d-4e8f-9a3c-5d6e7f8a9b0c`,
			`digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 id 1f0e4c9a-2b7d-4e8f-9a3c-5d6e7f8a9b0c`},
		{"Initializing server.\n", "Initializing server.\n"},
		{`path /repos/o/r?access_token=ghp%5F4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO`, `path /repos/o/r?access_token=ghp%5F[redacted]`},
		// "_" escaped in a fine-grained token's path, and in a JSON body (req_body holds it as \\u005f).
		{`path /repos/o/r/contents/github%5Fpat%5Frve61z3unL4fNQWblQKjwb%5F4FZaPAStYw8wqZwQJ56RsdgtakD4wKUQNToAN4Mo7llhMXzs1fquX1nXMbv`,
			`path /repos/o/r/contents/github%5Fpat%5F[redacted]`},
		{`q github_pat_rve61z3unL4fNQWblQKjwb%5f4FZaPAStYw8wqZwQJ56RsdgtakD4wKUQNToAN4Mo7llhMXzs1fquX1nXMbv`, `q github_pat_[redacted]`},
		{`"req_body":"{\"token\": \"ghp\\u005f4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO\"}"`, `"req_body":"{\"token\": \"ghp\\u005f[redacted]\"}"`},
		{`"req_body":"{\"t\": \"github\\u005fpat\\u005frve61z3unL4fNQWblQKjwb\\u005F4FZaPAStYw8wqZwQJ56RsdgtakD4wKUQNToAN4Mo7llhMXzs1fquX1nXMbv\"}"`,
			`"req_body":"{\"t\": \"github\\u005fpat\\u005f[redacted]\"}"`},
		// A configured prefix without "_" (token.NotePrefixes, as the plugin does).
		{`"token": "acmepat4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO"`, `"token": "acmepat[redacted]"`},
		// One not noted: the checksum tells a token's secret at the end of a run.
		{`"token": "otherpat4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHO"`, `"token": "otherpat[redacted]"`},
		{`"digest": "otherpat4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHX"`, `"digest": "otherpat4rrxSMljMErih6C6Pz50pojiaiKW3i23NCHX"`},
		// The letters of an escaped "_" are not a secret's.
		{`"t": "x\\u005facmepatacmepatgh_rve61z3unL4fNQWblQKjwb_4FZaPAStYw8wqZwQJ56RsdgtakD4wKUQNToAN4Mo7llhMXzs1fquX1nXMbv"`,
			`"t": "x\\u005facmepatacmepatgh_[redacted]"`},
		// A token cut short or mistyped after a known prefix: 30 or more token characters with a
		// capital or a digit (a classic token's random part, from which its checksum follows).
		{`{"req_body":"{\"input\":{\"credential\":{\"token\":\"ghp_hVgBJVki9hKwcBPybIViXQVzqFzpeA1tPA1\"}}}"}`,
			`{"req_body":"{\"input\":{\"credential\":{\"token\":\"ghp_[redacted]\"}}}"}`},
		{`token github_pat_XTq0KvlLwXRXw6pe2qCQNI_fjEtQeQ9zM46RWnZPMXIYlG2piDdUx0QiClPbw4OvP1ZyZNejUqoF4NPfT here`,
			`token github_pat_[redacted] here`},
		{`t GHP_HVGBJVKI9HKWCBPYBIVIXQVZQFZPEA1T`, `t GHP_[redacted]`},
		{`path /x?access_token=ghp%5FhVgBJVki9hKwcBPybIViXQVzqFzpeA1tPA`, `path /x?access_token=ghp%5F[redacted]`},
		{`"t": "github\\u005fpat\\u005fXTq0KvlLwXRXw6pe2qCQNI\\u005ffjEtQeQ9zM46RWnZPMX"`, `"t": "github\\u005fpat\\u005f[redacted]"`},
		{`"token": "acmepat4rrxSMljMErih6C6Pz50pojiaiKW3i23NCH"`, `"token": "acmepat[redacted]"`},
		// Every character JSON-escaped, in a body logged as sent.
		{`"req_body":"{\"token\": \"\\u0067\\u0068\\u0070\\u005f\\u0034\\u0072\\u0072\\u0078\\u0053\\u004d\\u006c\\u006a\\u004d\\u0045\\u0072\\u0069\\u0068\\u0036\\u0043\\u0036\\u0050\\u007a\\u0035\\u0030\\u0070\\u006f\\u006a\\u0069\\u0061\\u0069\\u004b\\u0057\\u0033\\u0069\\u0032\\u0033\\u004e\\u0043\\u0048\\u004f\"}"`,
			`"req_body":"{\"token\": \"[redacted]\"}"`},
		{`"note": "\\u003cb\\u003e bold \\u0026 \\u00e9"`, `"note": "\\u003cb\\u003e bold \\u0026 \\u00e9"`},
		// A classic token followed by "_" and a SHA-256 in hex is shaped like a fine-grained secret
		// first: the run before the "_" goes with it, all of the classic secret.
		{`key 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_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 set`,
			`key ghp_[redacted]00a08 set`},
		// Left alone: a prefix before a word, lower-case names, and fewer than 30 characters.
		{`rotate ghp_tokens_of_the_organization_every_week`, `rotate ghp_tokens_of_the_organization_every_week`},
		{`prefix ghp_ then ghp_hVgBJVki9hKwcBPybIViXQVzqF`, `prefix ghp_ then ghp_hVgBJVki9hKwcBPybIViXQVzqF`},
	} {
		if got := string(redactLine([]byte(tc.in))); got != tc.want {
			t.Errorf("redactLine(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// Whatever text stands around a token on a log line, the sidecars' stderr
// filter leaves nothing of its secret (tokentest.Leak).
func FuzzRedactLine(f *testing.F) {
	tokentest.AddSeeds(f)
	f.Fuzz(func(t *testing.T, before, after string, random []byte, fine bool) {
		raw, prefix := tokentest.FromBytes(random, fine)
		line := before + raw + after
		got := string(redactLine([]byte(line)))
		if leaked := tokentest.Leak(got, raw[len(prefix):], before, after); leaked != "" {
			t.Fatalf("redactLine(%q) = %q: %q is left of the token's secret", line, got, leaked)
		}
	})
}
