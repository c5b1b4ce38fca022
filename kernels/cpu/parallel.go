package cpu

import "sync"

// parallelFor splits [0, n) into at most `workers` contiguous ranges and runs
// fn on each concurrently. Small n runs inline to avoid goroutine overhead.
func parallelFor(workers, n, minPerWorker int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if minPerWorker < 1 {
		minPerWorker = 1
	}
	w := workers
	if maxW := (n + minPerWorker - 1) / minPerWorker; w > maxW {
		w = maxW
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(w)
	for i := 0; i < w; i++ {
		lo, hi := n*i/w, n*(i+1)/w
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// reduceChunk is the number of rows summed by one partial in reductions over
// rows (weight gradients, bias gradients). The chunking does not depend on
// the thread count, so results are bit-identical for any number of threads.
const reduceChunk = 64

// reduceRows computes out[j] += Σ_rows f(row)[j] deterministically: rows are
// cut into fixed chunks, each chunk accumulates into its own partial in
// parallel, and the partials are added in chunk order.
func reduceRows(workers, rows, width int, out []float32, accum func(partial []float32, lo, hi int)) {
	chunks := (rows + reduceChunk - 1) / reduceChunk
	if chunks == 0 {
		return
	}
	partials := make([]float32, chunks*width)
	parallelFor(workers, chunks, 1, func(clo, chi int) {
		for c := clo; c < chi; c++ {
			lo := c * reduceChunk
			hi := min(lo+reduceChunk, rows)
			accum(partials[c*width:(c+1)*width], lo, hi)
		}
	})
	// Column slices are summed in parallel; each column still adds its
	// partials in chunk order.
	parallelFor(workers, width, 256, func(lo, hi int) {
		for c := 0; c < chunks; c++ {
			p := partials[c*width : (c+1)*width]
			for j := lo; j < hi; j++ {
				out[j] += p[j]
			}
		}
	})
}

// dotScalar is Σ a·b with four accumulators; dot uses a vector version
// where the build allows.
func dotScalar(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyScalar computes y += a*x.
func axpyScalar(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// maxSliceScalar is the largest element of a non-empty x (NaN if any is).
func maxSliceScalar(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	return m
}

// scaleIntoScalar writes dst = s·src.
func scaleIntoScalar(dst, src []float32, s float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v * s
	}
}

// sumSquaresScalar is Σ x² accumulated in float64 (each square is exact
// in float64).
func sumSquaresScalar(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// normRowScalar writes dst[j] = (src[j]·r)·w[j], RMSNorm's output.
func normRowScalar(dst, src, w []float32, r float32) {
	dst, w = dst[:len(src)], w[:len(src)]
	for j, v := range src {
		dst[j] = v * r * w[j]
	}
}
