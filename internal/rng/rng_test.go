package rng

import "testing"

// The stream is part of every run's identity (resumed runs and every
// backend draw the same numbers): these values pin it.
func TestDrawIsPinned(t *testing.T) {
	for _, tc := range []struct {
		seed, prompt, sample, step, want uint64
	}{
		{0, 0, 0, 0, 0xaaffdc6c8cf7420b},
		{1, 2, 3, 4, 0x4cd9ae1f8b11714f},
		{42, 7, 0, 11, 0xf1f52f214ba31800},
		{18446744073709551615, 1099511627776, 5, 1048576, 0x482d11e9eb956b6c},
	} {
		if got := Draw(tc.seed, tc.prompt, tc.sample, tc.step); got != tc.want {
			t.Errorf("Draw(%d, %d, %d, %d) = %#x, want %#x", tc.seed, tc.prompt, tc.sample, tc.step, got, tc.want)
		}
	}
	if u := Uniform(1, 2, 3, 4); u != float64(0x4cd9ae1f8b11714f>>11)*0x1p-53 || !(u >= 0 && u < 1) {
		t.Errorf("Uniform(1, 2, 3, 4) = %v", u)
	}
}
