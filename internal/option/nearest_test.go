package option

import "testing"

func TestNearest(t *testing.T) {
	keys := []string{"learning_rate", "lr", "epsilon", "epsilon_high"}
	for key, want := range map[string]string{
		"learnig_rate": "learning_rate", // one deletion
		"epsilon_hgih": "epsilon_high",  // a swap costs 2
		"epsilonn":     "epsilon",
		"lr":           "lr",
		"l":            "lr",
		"momentum":     "", // nothing close
		"eps":          "", // "epsilon" is 4 edits away
	} {
		if got := Nearest(key, keys); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", key, got, want)
		}
	}
}
