// Package dist is rltrain's data-parallel layer: the processes of one job
// (ranks), how they find each other and the collectives the trainer needs.
//
// A job is started by an MPI launcher (mpirun, srun --mpi=pmix, the
// Kubernetes MPI Operator); Open finds the launcher's environment and loads
// the MPI library at run time, so the one binary runs with no MPI installed
// where it is started on its own. Without a launcher Open returns Local, the
// one-process communicator whose collectives are no-ops.
//
// Every reduction is a sum over ranks in rank order (((x0 + x1) + x2) ...),
// computed by one rank per slice of the buffer and sent to all, so every
// rank holds the same bits and a rerun gives the same result whatever
// algorithm the MPI library picks: the library only moves bytes.
package dist

import (
	"fmt"
	"time"
)

// Comm is a group of ranks. Every collective must be called by every rank
// in the same order with matching sizes; the calls are not safe for
// concurrent use.
type Comm interface {
	// Rank is this process's index, 0..Size()-1.
	Rank() int
	// Size is the number of ranks.
	Size() int
	// LocalRank is this process's index among the ranks on its machine
	// (the device ordinal when there is one GPU per rank).
	LocalRank() int
	// LocalSize is the number of ranks on this machine.
	LocalSize() int
	// Barrier returns once every rank has entered it.
	Barrier() error
	// Bcast copies root's buf to every rank's buf (same length on all).
	Bcast(buf []byte, root int) error
	// AllGatherV concatenates every rank's send, in rank order, into recv
	// on every rank; counts[i] is rank i's len(send) and len(recv) is
	// their sum.
	AllGatherV(send, recv []byte, counts []int) error
	// AllToAllV sends block j of send (sendCounts[j] bytes, blocks
	// contiguous in rank order) to rank j and receives rank i's block for
	// this rank into block i of recv (recvCounts[i] bytes).
	AllToAllV(send []byte, sendCounts []int, recv []byte, recvCounts []int) error
	// Abort ends every rank of the job with a non-zero status, printing
	// msg on this rank first. It does not return.
	Abort(code int, msg string)
	// Close leaves the group; no collective may follow.
	Close() error
	// String says what the group is ("1 process", "MPI: Open MPI v4.1.4,
	// 2 ranks").
	String() string
}

// local is the communicator of a process started on its own.
type local struct{}

// Local is the one-process group: rank 0 of 1; collectives copy or do
// nothing.
var Local Comm = local{}

func (local) Rank() int      { return 0 }
func (local) Size() int      { return 1 }
func (local) LocalRank() int { return 0 }
func (local) LocalSize() int { return 1 }
func (local) Barrier() error { return nil }
func (local) Bcast(buf []byte, root int) error {
	if root != 0 {
		return fmt.Errorf("broadcast from rank %d in a group of 1", root)
	}
	return nil
}
func (local) AllGatherV(send, recv []byte, counts []int) error {
	if err := checkCounts(counts, 1, len(recv)); err != nil {
		return err
	}
	if counts[0] != len(send) {
		return fmt.Errorf("all-gather: %d bytes sent, counts say %d", len(send), counts[0])
	}
	copy(recv, send)
	return nil
}
func (local) AllToAllV(send []byte, sendCounts []int, recv []byte, recvCounts []int) error {
	if err := checkCounts(sendCounts, 1, len(send)); err != nil {
		return err
	}
	if err := checkCounts(recvCounts, 1, len(recv)); err != nil {
		return err
	}
	if sendCounts[0] != recvCounts[0] {
		return fmt.Errorf("all-to-all: %d bytes sent to self, %d expected", sendCounts[0], recvCounts[0])
	}
	copy(recv, send)
	return nil
}
func (local) Abort(code int, msg string) { abortLocal(code, msg) }
func (local) Close() error               { return nil }
func (local) String() string             { return "1 process" }

// checkCounts checks that counts has one entry per rank and sums to total.
func checkCounts(counts []int, size, total int) error {
	if len(counts) != size {
		return fmt.Errorf("%d counts for %d ranks", len(counts), size)
	}
	sum := 0
	for _, c := range counts {
		if c < 0 {
			return fmt.Errorf("negative count %d", c)
		}
		sum += c
	}
	if sum != total {
		return fmt.Errorf("counts sum to %d bytes, buffer holds %d", sum, total)
	}
	return nil
}

// Options configures Open.
type Options struct {
	// Timeout bounds every collective: a rank that waits longer for the
	// others (one of them died or hangs) aborts the whole job. Zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is long enough for rank 0 to write a large checkpoint
// while the others wait at the next collective.
const DefaultTimeout = 30 * time.Minute
