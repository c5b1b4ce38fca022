package cuda

import (
	"slices"
	"strings"
	"testing"
)

func TestPTXIsFresh(t *testing.T) {
	if err := checkPTXSources(); err != nil {
		t.Fatal(err)
	}
}

// Every kernel the emulator knows (except its self-tests) must be in the
// PTX of every architecture, so the real driver can launch what the
// emulated tests exercise.
func TestPTXHasEveryKernel(t *testing.T) {
	for _, arch := range PTXArchs {
		mods, err := PTX(arch)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, m := range mods {
			have = append(have, PTXEntries(m)...)
		}
		for _, k := range EmuKernels() {
			if strings.HasPrefix(k, "selftest_") {
				continue
			}
			if !slices.Contains(have, k) {
				t.Errorf("%s: kernel %s missing from the PTX", arch, k)
			}
		}
	}
}

func TestPTXArch(t *testing.T) {
	for _, tc := range []struct {
		major, minor int
		want         string
	}{{7, 5, "sm_75"}, {8, 0, "sm_75"}, {8, 6, "sm_75"}, {9, 0, "sm_75"}, {10, 0, "sm_75"}, {12, 0, "sm_75"}, {7, 0, ""}, {6, 1, ""}} {
		got, err := PTXArch(tc.major, tc.minor)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("PTXArch(%d.%d) = %q, %v; want %q", tc.major, tc.minor, got, err, tc.want)
		}
	}
}
