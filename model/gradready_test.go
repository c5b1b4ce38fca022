package model

import (
	"testing"
)

// GradReady reports every range of GradRanges once, in order, and a range
// reported holds its final gradient: nothing later in the pass writes it
// (tied and untied output layers, biases, q/k norms).
func TestGradReadyRangesAreFinal(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m := randomModel(t, cfg, 7)
			ranges := m.GradRanges()
			covered := make([]int, m.NumParams())
			for _, r := range ranges {
				for i := r[0]; i < r[0]+r[1]; i++ {
					covered[i]++
				}
			}
			for i, c := range covered {
				if c != 1 {
					t.Fatalf("parameter %d is in %d ranges of %v (want exactly 1)", i, c, ranges)
				}
			}
			b, targets, dlogp := paddedBatch()
			ws := m.NewWorkspace()
			if _, err := m.Forward(ws, b); err != nil {
				t.Fatal(err)
			}
			m.EnableGrads()
			var seen [][2]int
			var snaps [][]float32
			m.GradReady = func(off, n int) {
				seen = append(seen, [2]int{off, n})
				snaps = append(snaps, download(m.be, m.be.View(m.Grads, off, n)))
			}
			twoPass(t, m, ws, targets, 1, dlogp)
			m.GradReady = nil
			if len(seen) != len(ranges) {
				t.Fatalf("reported %v, want %v", seen, ranges)
			}
			final := download(m.be, m.Grads)
			for k, r := range seen {
				if r != ranges[k] {
					t.Fatalf("report %d is %v, GradRanges says %v", k, r, ranges[k])
				}
				for i, v := range snaps[k] {
					if v != final[r[0]+i] {
						t.Fatalf("range %v: gradient %d was %v when reported, %v after the pass", r, r[0]+i, v, final[r[0]+i])
					}
				}
			}
		})
	}
}
