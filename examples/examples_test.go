package examples

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFixturesAt(t *testing.T) {
	dates := func(b []byte) map[string][2]any {
		var w struct {
			Tokens []struct {
				Name      string  `json:"name"`
				CreatedAt *string `json:"created_at"`
				ExpiresAt *string `json:"expires_at"`
			} `json:"tokens"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		out := map[string][2]any{}
		for _, tk := range w.Tokens {
			var c, e any
			if tk.CreatedAt != nil {
				c = *tk.CreatedAt
			}
			if tk.ExpiresAt != nil {
				e = *tk.ExpiresAt
			}
			out[tk.Name] = [2]any{c, e}
		}
		return out
	}
	orig := dates(Fixtures)

	// Seeded on the fixtures' own day (any hour of it): nothing moves.
	same, err := FixturesAt(FixturesDay.Add(23 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range dates(same) {
		if d != orig[name] {
			t.Errorf("%s: %v; want %v unmoved", name, d, orig[name])
		}
	}

	// 400 days later every date moves by 400 days; no expiry stays none.
	later, err := FixturesAt(FixturesDay.Add(400*24*time.Hour + 5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := dates(later)
	want := map[string][2]any{
		"labs":   {"2027-12-06T00:00:00Z", "2028-02-19T00:00:00Z"}, // 2026-11-01, 2027-01-15
		"script": {"2027-09-05T00:00:00Z", nil},                    // 2026-08-01, no expiry
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %v; want %v", name, got[name], w)
		}
	}
	if len(got) != len(orig) {
		t.Errorf("%d tokens; want %d", len(got), len(orig))
	}
}
