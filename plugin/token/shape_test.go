package token

import (
	"slices"
	"strings"
	"testing"
)

const (
	sha256Hex    = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	shapeClassic = "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"
	shapeFG      = "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"
)

func mustGenerate(t testing.TB, kind string, p Prefixes) string {
	t.Helper()
	raw, err := Generate(kind, p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSecrets(t *testing.T) {
	text := "a " + shapeClassic + " b " + shapeFG + " c acmepat" + shapeClassic[4:] + " " + strings.Repeat("x", 35)
	var got []string
	for x := range Secrets(text) {
		got = append(got, x.Kind+" "+text[x.Run:x.Start]+"|"+text[x.Start:x.End])
	}
	want := []string{
		"classic |" + shapeClassic[4:],
		"fine_grained |" + shapeFG[len("github_pat_"):],
		"classic acmepat|" + shapeClassic[4:],
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// An escaped "_" separates runs and stands for the inner "_".
	escaped := strings.ReplaceAll(shapeFG, "_", "%5F")
	for x := range Secrets(escaped) {
		if x.Kind != KindFineGrained || !x.Valid(escaped) || escaped[x.End:] != "" {
			t.Fatalf("escaped: %+v", x)
		}
	}
}

func TestContains(t *testing.T) {
	custom := Prefixes{Classic: "acmepat", FineGrained: "acmefg"}
	for _, tc := range []struct {
		note, text string
		want       bool
	}{
		{"classic", shapeClassic, true},
		{"fine-grained", shapeFG, true},
		{"in a sentence", "rotated, the old one was " + shapeClassic + ".", true},
		{"quoted in JSON", `{"t":"` + shapeFG + `"}`, true},
		{"generated classic", mustGenerate(t, KindClassic, DefaultPrefixes), true},
		{"generated fine-grained", mustGenerate(t, KindFineGrained, DefaultPrefixes), true},
		// The checksum finds a token whatever its prefix.
		{"another deployment's classic prefix", mustGenerate(t, KindClassic, custom), true},
		{"another deployment's fine-grained prefix", mustGenerate(t, KindFineGrained, custom), true},
		{"no prefix", shapeClassic[4:], true},
		{"fine-grained with escaped underscores", strings.ReplaceAll(shapeFG, "_", "%5F"), true},
		{"fine-grained with JSON-escaped underscores", strings.ReplaceAll(shapeFG, "_", `\u005f`), true},
		// A known prefix, in any case, before a token's shape: a token
		// lower-cased (its checksum no longer holds) or mistyped.
		{"lower-cased classic", strings.ToLower(shapeClassic), true},
		{"lower-cased fine-grained", strings.ToLower(shapeFG), true},
		{"upper-cased classic", strings.ToUpper(shapeClassic), true},
		{"mistyped classic", shapeClassic[:39] + "1", true},
		// Not tokens.
		{"short", "ghp_abc", false},
		{"a name", "deploy key for octo-org/app (rotated 2026-01-01)", false},
		{"36 characters, wrong checksum, no prefix", strings.ToLower(shapeClassic[4:]), false},
		{"sha-256", sha256Hex, false},
		{"uuid", "1f0e4c9a-2b7d-4e8f-9a3c-5d6e7f8a9b0c", false},
		{"a long word", strings.Repeat("abcdefghij", 100), false},
		{"prefix before a longer run", "ghp_" + strings.Repeat("a", 40), false},
		// A token written against letters or digits: its secret starts the run.
		{"classic followed by letters", "revoke " + shapeClassic + "s now", true},
		{"classic followed by a digit", shapeClassic + "2", true},
		{"two classic tokens pasted together", shapeClassic + shapeClassic, true},
		{"lower-cased with another deployment's prefix", strings.ToLower(mustGenerate(t, KindClassic, Prefixes{Classic: "zz_", FineGrained: "zzf_"})), false},
		// A classic token where a fine-grained secret's shape is read first: "_" and 59 or more
		// base62 characters after it, or 22 or more before its prefix and 23 after it.
		{"classic, then _ and a SHA-256", shapeClassic + "_" + sha256Hex, true},
		{"classic without its prefix, then _ and a SHA-256", shapeClassic[4:] + "_" + sha256Hex, true},
		{"classic lower-cased, then _ and a SHA-256", strings.ToLower(shapeClassic) + "_" + sha256Hex, true},
		{"classic between runs", strings.Repeat("a", 19) + shapeClassic + strings.Repeat("b", 23), true},
		{"36 characters, wrong checksum, then _ and a SHA-256", strings.ToLower(shapeClassic[4:]) + "_" + sha256Hex, false},
	} {
		if got := Contains(tc.text); got != tc.want {
			t.Errorf("%s: Contains(%q) = %v, want %v", tc.note, tc.text, got, tc.want)
		}
	}
	// Prefixes given, or noted by this process, count as GitHub's do.
	lower := strings.ToLower(mustGenerate(t, KindClassic, Prefixes{Classic: "qq_", FineGrained: "qqf_"}))
	if Contains(lower) || !Contains(lower, Prefixes{Classic: "qq_"}) {
		t.Errorf("given prefix: %q", lower)
	}
	reason, long := "reason: "+shapeClassic[4:], strings.Repeat("ghp_"+strings.ToLower(shapeClassic[5:]), 3)
	if got := testing.AllocsPerRun(100, func() { Contains(reason); Contains(long) }); got != 0 {
		t.Errorf("Contains allocates %v times", got)
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"oauth", `"oauth"`},
		{"2001-01-01", `"2001-01-01"`},
		{shapeClassic, "(40 characters, not shown: it looks like a personal access token)"},
		{"x " + shapeFG, "(95 characters, not shown: it looks like a personal access token)"},
		// A secret's shape alone is enough not to show it.
		{"ghq_" + strings.Repeat("a", 36), "(40 characters, not shown: it looks like a personal access token)"},
		{strings.Repeat("a", 37), `"` + strings.Repeat("a", 37) + `"`},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"open /tmp/" + shapeClassic + "/w.json: no such file", "open /tmp/ghp_[redacted]/w.json: no such file"},
		{"a " + shapeFG + " and " + strings.ToLower(shapeClassic), "a github_pat_[redacted] and ghp_[redacted]"},
		// A run of 36 that is no token's stays.
		{"/tmp/TestCLIFailureLeavesNoStore103427528/001/w.json", "/tmp/TestCLIFailureLeavesNoStore103427528/001/w.json"},
		{"short", "short"},
		// A token written against what follows is hidden with it.
		{"name " + shapeClassic + "s.", "name ghp_[redacted]."},
		{shapeClassic + "ghp_" + shapeClassic[4:], "ghp_[redacted]_[redacted]"},
		// Read as a fine-grained secret's shape first (Contains).
		{"key 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_" + sha256Hex, "key ghp_[redacted]_" + sha256Hex},
		{strings.Repeat("a", 19) + shapeClassic + strings.Repeat("b", 23), strings.Repeat("a", 19) + "ghp_[redacted]"},
		{strings.Repeat("a", 19) + shapeClassic + strings.Repeat("b", 23) + "_" + shapeClassic,
			strings.Repeat("a", 19) + "ghp_[redacted]_ghp_[redacted]"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkContains measures the check of a store write on a name and on a
// reason of the longest length the store keeps.
func BenchmarkContains(b *testing.B) {
	for _, tc := range []struct{ name, text string }{
		{"short", "octo-org"},
		{"name", "deploy key for the app, rotated monthly"},
		{"reason-1024", strings.Repeat("needs write access to app for the release; ", 24)[:1024]},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if Contains(tc.text) {
					b.Fatal(tc.text)
				}
			}
		})
	}
}

// Hidden also takes for a token what the decision-log mask does (a known
// prefix, in any case, then 30 or more letters, digits and "_" with an
// upper-case letter or digit): a token cut short, which has neither a
// checksum nor a secret's full length. Words that start with a prefix do
// not count.
func TestHidden(t *testing.T) {
	custom := Prefixes{Classic: "zqhidden", FineGrained: "zqhiddenfg-"}
	for _, tc := range []struct {
		note, s string
		want    bool
	}{
		{"classic", shapeClassic, true},
		{"fine-grained", shapeFG, true},
		{"classic cut by 3", shapeClassic[:37], true},
		{"classic cut by 6 (30 left)", shapeClassic[:34], true},
		{"classic cut by 3, lower case", strings.ToLower(shapeClassic[:37]), true}, // digits remain
		{"classic cut by 3, upper case prefix", "GHP_" + shapeClassic[4:37], true},
		{"classic cut by 3 in a sentence", "owner " + shapeClassic[:37] + ", please", true},
		{"fine-grained cut to 60", shapeFG[:60], true},
		{"fine-grained cut after its first part", shapeFG[:len("github_pat_")+30], true},
		{"fine-grained cut by 3", shapeFG[:90], true},
		// Not tokens.
		{"classic cut to 29", shapeClassic[:33], false},
		{"fine-grained cut to 29", shapeFG[:len("github_pat_")+29], false},
		{"prefix alone", "ghp_", false},
		{"fine-grained prefix alone", "github_pat_", false},
		{"a word", "acmecorp", false},
		{"a hyphenated word", "acme-corp", false},
		{"short identifier", "octo-org", false},
		{"identifier with the prefix", "ghp_rotation", false},
		{"lower-case run after the prefix", "ghp_" + strings.Repeat("abcdefghij", 4), false},
		{"underscored lower-case name", "github_pat_rotation_schedule_for_all_repositories", false},
		{"prefix, then 30 with a break", "ghp_ABCDEFGHIJKLMNO-PQRSTUVWXYZ0123", false},
		{"30 without a prefix", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", false},
		{"sha-256", sha256Hex, false},
		{"a long word", strings.Repeat("abcdefghij", 100), false},
		// A prefix given counts as GitHub's do; without it, its tokens cut
		// short are not known.
		{"given prefix, cut by 3", "zqhidden" + shapeClassic[4:37], false},
	} {
		if got := Hidden(tc.s); got != tc.want {
			t.Errorf("%s: Hidden(%q) = %v, want %v", tc.note, tc.s, got, tc.want)
		}
	}
	for _, s := range []string{"zqhidden" + shapeClassic[4:37], "ZQHIDDENFG-" + shapeFG[11:50], "x zqhiddenzqhidden" + shapeClassic[4:37]} {
		if !Hidden(s, custom) {
			t.Errorf("Hidden(%q, %v) = false", s, custom)
		}
	}
	for _, s := range []string{"zqhiddencorp", "zqhidden-corp", "zqhidden", "zqhiddenfg-" + strings.Repeat("x", 40)} {
		if Hidden(s, custom) {
			t.Errorf("Hidden(%q, %v) = true", s, custom)
		}
	}
	if got := Quote(shapeClassic[:37]); got != "(37 characters, not shown: it looks like a personal access token)" {
		t.Errorf("Quote = %s", got)
	}
	cut, word := "reason: "+shapeClassic[:37], "acme-corp "+strings.Repeat("ghp_abcdefghij", 20)
	if got := testing.AllocsPerRun(100, func() { Hidden(cut); Hidden(word); Hidden(word, custom) }); got != 0 {
		t.Errorf("Hidden allocates %v times", got)
	}
}
