package cpu

import "sync"

// optimMinWork is the number of floats below which the optimizer kernels
// run on the calling goroutine: starting goroutines costs more than the
// work.
const optimMinWork = 1 << 14

// optimParts returns how many goroutines to use for work floats.
func optimParts(work, threads int) int {
	if work < optimMinWork || threads < 1 {
		return 1
	}
	return threads
}

// optimParallel runs fn over [0, n) split into at most parts contiguous
// ranges, one goroutine each, and waits.
func optimParallel(n, parts int, fn func(part, lo, hi int)) {
	if parts > n {
		parts = n
	}
	if parts <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(p, lo, hi)
		}()
	}
	wg.Wait()
}
