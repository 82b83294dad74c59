package token

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	Valid []struct {
		Kind  string `json:"kind"`
		Token string `json:"token"`
	} `json:"valid"`
	Invalid []struct {
		Why   string `json:"why"`
		Token string `json:"token"`
	} `json:"invalid"`
}

// vectorsFile is the design's token vectors, beside docs/DESIGN.md, which names
// them as "testdata/token-vectors.json beside this file": one copy, the one
// the design points readers and secret scanners to.
const vectorsFile = "../../docs/testdata/token-vectors.json"

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func TestParseVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Valid {
		t.Run("valid "+tc.Token, func(t *testing.T) {
			kind, ok := Parse(tc.Token, DefaultPrefixes)
			if !ok || kind != tc.Kind {
				t.Fatalf("Parse = %q, %v; want %q, true", kind, ok, tc.Kind)
			}
		})
	}
	for _, tc := range v.Invalid {
		t.Run("invalid "+tc.Why, func(t *testing.T) {
			if kind, ok := Parse(tc.Token, DefaultPrefixes); ok {
				t.Fatalf("Parse = %q, true; want rejected", kind)
			}
		})
	}
}

func TestParse(t *testing.T) {
	classic := "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"
	fg := "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"
	custom := Prefixes{Classic: "acme_", FineGrained: "acme_pat_"}
	for _, tc := range []struct {
		note  string
		raw   string
		p     Prefixes
		kind  string
		valid bool
	}{
		{note: "empty", raw: "", p: DefaultPrefixes},
		{note: "prefix only", raw: "ghp_", p: DefaultPrefixes},
		{note: "classic one char longer", raw: classic + "0", p: DefaultPrefixes},
		{note: "classic one char shorter", raw: classic[:len(classic)-1], p: DefaultPrefixes},
		{note: "fine-grained underscore in tail", raw: fg[:40] + "_" + fg[41:], p: DefaultPrefixes},
		{note: "fine-grained with classic prefix body", raw: "github_pat_" + classic[4:], p: DefaultPrefixes},
		{note: "classic under other prefixes", raw: classic, p: custom},
		{note: "custom classic prefix", raw: "acme_" + classic[4:], p: custom, kind: KindClassic, valid: true},
		{note: "custom fine-grained prefix", raw: "acme_pat_" + fg[11:], p: custom, kind: KindFineGrained, valid: true},
		{note: "non-ascii", raw: "ghp_é" + classic[6:], p: DefaultPrefixes},
		{note: "checksum with invalid digit", raw: classic[:len(classic)-1] + "-", p: DefaultPrefixes},
	} {
		t.Run(tc.note, func(t *testing.T) {
			kind, ok := Parse(tc.raw, tc.p)
			if ok != tc.valid || kind != tc.kind {
				t.Fatalf("Parse(%q) = %q, %v; want %q, %v", tc.raw, kind, ok, tc.kind, tc.valid)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		note   string
		kind   string
		p      Prefixes
		prefix string
		length int
		err    string
	}{
		{note: "classic", kind: KindClassic, p: DefaultPrefixes, prefix: "ghp_", length: 40},
		{note: "fine-grained", kind: KindFineGrained, p: DefaultPrefixes, prefix: "github_pat_", length: 93},
		{note: "custom prefix", kind: KindClassic, p: Prefixes{Classic: "x_", FineGrained: "y_"}, prefix: "x_", length: 38},
		{note: "unknown kind", kind: "oauth", p: DefaultPrefixes, err: `kind: unknown kind "oauth"`},
		{note: "no prefix", kind: KindClassic, p: Prefixes{FineGrained: "y_"}, err: `kind: no prefix configured for "classic"`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			seen := map[string]bool{}
			for range 200 {
				raw, err := Generate(tc.kind, tc.p)
				if tc.err != "" {
					if err == nil || err.Error() != tc.err {
						t.Fatalf("err = %v; want %q", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(raw) != tc.length || !strings.HasPrefix(raw, tc.prefix) {
					t.Fatalf("Generate = %q; want %d chars starting %q", raw, tc.length, tc.prefix)
				}
				if kind, ok := Parse(raw, tc.p); !ok || kind != tc.kind {
					t.Fatalf("Parse(%q) = %q, %v", raw, kind, ok)
				}
				if seen[raw] {
					t.Fatalf("duplicate token %q", raw)
				}
				seen[raw] = true
			}
		})
	}
}

func TestChecksum(t *testing.T) {
	// GitHub's published example: 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.
	if got := Checksum("zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ"); got != "0mLq17" {
		t.Fatalf("Checksum = %q; want %q", got, "0mLq17")
	}
	if got := Checksum(""); got != "000000" {
		t.Fatalf("Checksum(\"\") = %q; want %q", got, "000000")
	}
}

func TestHash(t *testing.T) {
	h := Hash("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")
	if h == Hash("ghp_DEpGVKt1V8xcky8Y4twk4ylS5Cwrp42bW5D1") {
		t.Fatal("different tokens hash alike")
	}
	// sha256 of "abc".
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	got := Hash("abc")
	if hexs := hexString(got[:]); hexs != want {
		t.Fatalf("Hash(abc) = %s; want %s", hexs, want)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestParseDoesNotAllocate(t *testing.T) {
	for _, raw := range []string{
		"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",
		"ghp_DEpGVKt1V8xcky8Y4twk4ylS5Cwrp42bW5D1",
		"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",
		"garbage",
	} {
		if n := testing.AllocsPerRun(100, func() { Parse(raw, DefaultPrefixes) }); n != 0 {
			t.Fatalf("Parse(%q) allocates %v times", raw, n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	raw := "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"
	for b.Loop() {
		Parse(raw, DefaultPrefixes)
	}
}
