package config

import (
	"strings"
	"testing"
)

// YAML syntax errors point at the line where the problem is (yaml.v3
// gives its parser's errors a 0-based line).
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"train:\n  steps: 2\noptim: {lr: 1e-3\nlog: {every: 1}\n", "cfg.yaml:3: did not find expected ',' or '}'"},
		{"train:\n  steps: 2\n\n\nreward: [a, b\n", "cfg.yaml:5: did not find expected ',' or ']'"},
		{"train:\n  steps: 2\n out_dir: x\n", "cfg.yaml:3: did not find expected key"},
		{"train:\n  steps: 2\n  seed: 1: 2\n", "cfg.yaml:3: mapping values are not allowed"},
		// Tabs in indentation: yaml.v3 names the line of the value before.
		{"train:\n  steps: 2\n\tseed: 1\n", "cfg.yaml:3: found a tab character that violates indentation"},
		{"train:\n  steps: 2\n  out_dir: x\n\n\n\tseed: 1\n", "cfg.yaml:6: found a tab character that violates indentation"},
		{"sft: {steps: 2}\ntrain:\n  steps: 2\n \t seed: 1\n", "cfg.yaml:4: found a tab character that violates indentation"},
		{"train: 1\n\tseed: 1\n", "cfg.yaml:2: found a tab character that violates indentation"},
		{"train:\n\tsteps: 2\n", "cfg.yaml:2: found character that cannot start any token"},
	} {
		_, err := Parse([]byte(tc.src), "cfg.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}
