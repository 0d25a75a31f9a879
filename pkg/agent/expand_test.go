package agent

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "beta", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":           "plain",
		"$(A)":            "alpha",
		"x$(A)y$(B)z":     "xalphaybetaz",
		"$(UNDEFINED)":    "$(UNDEFINED)",
		"$$(A)":           "$(A)",
		"$$$(A)":          "$alpha",
		"$(EMPTY)-":       "-",
		"cost $5":         "cost $5",
		"trailing $":      "trailing $",
		"$(A":             "$(A",
		"$(A)$(UNDEFINED": "alpha$(UNDEFINED",
		"nested $($(A))":  "nested $($(A))",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
