package cpu

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the CPU time of the calling OS thread: on a shared machine
// it measures a single-threaded kernel's cost without the time other
// processes take.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time of the whole process (every thread).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeGemm times the products of one decoding step (activations
// [m × k] times a transposed weight [n × k]) for the two rollout benchmark
// shapes, through rowsGemm and through OpenBLAS, on one and two threads (on one,
// cpu-GFLOP/s divides by the thread's CPU time).
//
//	go test -run '^$' -bench DecodeGemm ./kernels/cpu
func BenchmarkDecodeGemm(b *testing.B) {
	shapes := []struct {
		name string
		n, k int
	}{
		{"d256/qkv", 512, 256}, {"d256/o", 256, 256}, {"d256/gateup", 1536, 256}, {"d256/down", 256, 768}, {"d256/head", 4096, 256},
		{"d512/qkv", 1024, 512}, {"d512/o", 512, 512}, {"d512/gateup", 3072, 512}, {"d512/down", 512, 1536}, {"d512/head", 32000, 512},
	}
	setBLASThreads(1)
	shapes = append(shapes, struct {
		name string
		n, k int
	}{"big", 1024, 1024})
	for _, s := range shapes {
		for _, m := range []int{64, 1024} {
			if (m == 1024) != (s.name == "big") {
				continue
			}
			for _, rows := range []bool{true, false} {
				for _, workers := range []int{1, 2} {
					name := "openblas"
					if rows {
						name = "rows"
					}
					b.Run(fmt.Sprintf("%s/m%d/%s/t%d", s.name, m, name, workers), func(b *testing.B) {
						saved := rowsGemmOK
						rowsGemmOK = rowsGemmOK && rows
						defer func() { rowsGemmOK = saved }()
						a, w, c := make([]float32, m*s.k), make([]float32, s.n*s.k), make([]float32, m*s.n)
						for i := range a {
							a[i] = float32(i%7) * 0.1
						}
						for i := range w {
							w[i] = float32(i%5) * 0.1
						}
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						t0 := threadCPU()
						for b.Loop() {
							parallelGemm(workers, false, true, m, s.n, s.k, 1, a, s.k, w, s.k, 0, c, s.n)
						}
						flop := 2 * float64(m*s.n*s.k) * float64(b.N)
						b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						if workers == 1 {
							b.ReportMetric(flop/(threadCPU()-t0).Seconds()/1e9, "cpu-GFLOP/s")
						}
					})
				}
			}
		}
	}
}
