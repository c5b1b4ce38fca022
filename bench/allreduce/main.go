// Command allreduce measures the gradient all-reduce of internal/dist
// under an MPI launcher: the rank-order sum of a float32 buffer the size of
// a model's flat gradient, whole and in buckets.
//
//	mpirun -np 2 bin/allreduce-bench --floats 41600000 --bucket-mb 25
//
// It prints, on rank 0, the mean time per all-reduce and two bandwidths as
// nccl-tests defines them: algorithm bandwidth (bytes / time) and bus
// bandwidth (algorithm bandwidth × 2(N−1)/N, the traffic a ring all-reduce
// puts on each link, comparable across rank counts).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rltrain/rltrain/internal/dist"
)

func main() {
	floats := flag.Int("floats", 1<<20, "values in the buffer (a model's parameter count)")
	bucketMB := flag.Float64("bucket-mb", 0, "all-reduce in buckets of this many MiB (0: the whole buffer at once)")
	reps := flag.Int("reps", 5, "timed repetitions (after one untimed)")
	flag.Parse()
	if err := run(*floats, *bucketMB, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "allreduce:", err)
		os.Exit(1)
	}
}

func run(floats int, bucketMB float64, reps int) error {
	c, err := dist.Open(dist.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]float32, floats)
	for i := range buf {
		buf[i] = float32(i%97) * 1e-3
	}
	bucket := floats
	if bucketMB > 0 {
		bucket = max(int(bucketMB*(1<<20)/4), 1)
	}
	r := dist.NewReducer(c)
	defer r.Close()
	once := func() (time.Duration, error) {
		if err := c.Barrier(); err != nil {
			return 0, err
		}
		start := time.Now()
		for lo := 0; lo < floats; lo += bucket {
			r.Start(buf[lo:min(lo+bucket, floats)])
		}
		err := r.Wait()
		return time.Since(start), err
	}
	if _, err := once(); err != nil {
		return err
	}
	var total time.Duration
	for i := 0; i < reps; i++ {
		d, err := once()
		if err != nil {
			return err
		}
		total += d
	}
	if c.Rank() == 0 {
		n := c.Size()
		sec := total.Seconds() / float64(reps)
		bytes := float64(floats) * 4
		alg := bytes / sec / 1e9
		fmt.Printf("%s: %d floats (%.1f MB) in buckets of %d: %.2f ms per all-reduce, algorithm bandwidth %.2f GB/s, bus bandwidth %.2f GB/s\n",
			c, floats, bytes/1e6, bucket, sec*1e3, alg, alg*2*float64(n-1)/float64(n))
	}
	return nil
}
