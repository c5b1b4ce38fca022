package dist

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "mpi_dl.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// MPI_THREAD_SERIALIZED: any thread may call MPI, one at a time (goroutines
// move between OS threads, so FUNNELED would not do). The value is the
// same in Open MPI and MPICH.
const mpiThreadSerialized = 2

// maxMPIBytes bounds one call's buffer: MPI counts and displacements are
// C ints.
const maxMPIBytes = math.MaxInt32

var (
	openMu sync.Mutex
	opened Comm
)

// Open returns the job's communicator: Local when no launcher started the
// process, otherwise the MPI world, initialised on the first call (later
// calls return the same group).
func Open(opts Options) (Comm, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if opened != nil {
		return opened, nil
	}
	l, err := detect(os.Getenv)
	if err != nil {
		return nil, err
	}
	if l.by == "" {
		return Local, nil
	}
	c, err := openMPI(l, opts)
	if err != nil {
		return nil, fmt.Errorf("started by %s: %w", l.by, err)
	}
	opened = c
	return c, nil
}

// mpiComm is MPI_COMM_WORLD of a library loaded with dlopen.
type mpiComm struct {
	rank, size           int
	localRank, localSize int
	desc                 string
	timeout              time.Duration

	mu     sync.Mutex // one MPI call at a time (MPI_THREAD_SERIALIZED)
	mpi    waitSlot   // the running MPI call
	ext    waitSlot   // a wait outside MPI under Guard (NCCL)
	done   chan struct{}
	closed bool
}

// waitSlot records one blocking call for the watchdog.
type waitSlot struct {
	start atomic.Int64 // unix ns, 0 when idle
	op    atomic.Pointer[string]
}

func (w *waitSlot) begin(op string) {
	w.op.Store(&op)
	w.start.Store(time.Now().UnixNano())
}

func (w *waitSlot) end() { w.start.Store(0) }

// overdue returns the call's name and how long it has waited, if longer
// than limit.
func (w *waitSlot) overdue(now time.Time, limit time.Duration) (string, time.Duration, bool) {
	start := w.start.Load()
	if start == 0 {
		return "", 0, false
	}
	waited := now.Sub(time.Unix(0, start))
	if waited <= limit {
		return "", 0, false
	}
	op := "a collective"
	if p := w.op.Load(); p != nil {
		op = *p
	}
	return op, waited, true
}

func openMPI(l launch, opts Options) (*mpiComm, error) {
	var loadErrs []string
	abi := C.int(-1)
	lib := ""
	for _, name := range l.libs {
		cname := C.CString(name)
		var msg [512]C.char
		abi = C.rl_mpi_open(cname, &msg[0], C.int(len(msg)))
		C.free(unsafe.Pointer(cname))
		if abi > 0 {
			lib = name
			break
		}
		loadErrs = append(loadErrs, C.GoString(&msg[0]))
	}
	if abi <= 0 {
		return nil, fmt.Errorf("load the MPI library (tried %s; set %s to its path): %s",
			strings.Join(l.libs, ", "), LibraryEnv, strings.Join(loadErrs, "; "))
	}
	var provided C.int
	if rc := C.rl_mpi_init(mpiThreadSerialized, &provided); rc != 0 {
		return nil, fmt.Errorf("MPI_Init_thread: %s", mpiError(rc))
	}
	if provided < mpiThreadSerialized {
		return nil, fmt.Errorf("%s provides thread level %d; rltrain needs MPI_THREAD_SERIALIZED (2)", lib, provided)
	}
	c := &mpiComm{timeout: opts.Timeout, done: make(chan struct{})}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	var r, n C.int
	if rc := C.rl_mpi_rank(&r); rc != 0 {
		return nil, fmt.Errorf("MPI_Comm_rank: %s", mpiError(rc))
	}
	if rc := C.rl_mpi_size(&n); rc != 0 {
		return nil, fmt.Errorf("MPI_Comm_size: %s", mpiError(rc))
	}
	c.rank, c.size = int(r), int(n)
	var ver [256]C.char
	C.rl_mpi_library_version(&ver[0], C.int(len(ver)))
	c.desc = fmt.Sprintf("MPI: %s, %d ranks", libraryName(C.GoString(&ver[0])), c.size)
	go c.watch()
	if err := c.findLocal(); err != nil {
		return nil, err
	}
	return c, nil
}

// libraryName shortens MPI_Get_library_version's text to its name and
// version: "Open MPI v4.1.4, package: ..." and "MPICH Version:\t4.0.2\n..."
// become "Open MPI v4.1.4" and "MPICH 4.0.2".
func libraryName(v string) string {
	v = strings.SplitN(strings.TrimSpace(v), "\n", 2)[0]
	v = strings.SplitN(v, ",", 2)[0]
	v = strings.Replace(v, " Version:", "", 1)
	return strings.Join(strings.Fields(v), " ")
}

// findLocal sets the local rank and size: from the launcher's variables
// when it gives them, the local size (and the rank otherwise) by comparing
// host names.
func (c *mpiComm) findLocal() error {
	const width = 256
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("host name: %w", err)
	}
	mine := make([]byte, width)
	copy(mine, host)
	all := make([]byte, width*c.size)
	counts := make([]int, c.size)
	for i := range counts {
		counts[i] = width
	}
	if err := c.AllGatherV(mine, all, counts); err != nil {
		return fmt.Errorf("exchange host names: %w", err)
	}
	before := 0
	for i := 0; i < c.size; i++ {
		if bytes.Equal(all[i*width:(i+1)*width], mine) {
			if i < c.rank {
				before++
			}
			c.localSize++
		}
	}
	c.localRank = before
	if r, ok := envLocalRank(os.Getenv, c.size); ok {
		c.localRank = r
	}
	return nil
}

// watch aborts the job when one call has waited longer than the timeout:
// another rank died without the launcher noticing, or hangs.
func (c *mpiComm) watch() {
	tick := min(c.timeout/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			for _, w := range []*waitSlot{&c.mpi, &c.ext} {
				if op, waited, late := w.overdue(now, c.timeout); late {
					c.Abort(3, fmt.Sprintf("rank %d: %s waited %.0f s for the other ranks (timeout %.0f s): "+
						"another rank died or hangs; ending the job", c.rank, op, waited.Seconds(), c.timeout.Seconds()))
				}
			}
		}
	}
}

// call runs one MPI call under the lock and the watchdog.
func (c *mpiComm) call(op string, f func() C.int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New(op + ": communicator closed")
	}
	c.mpi.begin(op)
	rc := f()
	c.mpi.end()
	if rc != 0 {
		return fmt.Errorf("%s: %s", op, mpiError(rc))
	}
	return nil
}

// Guard runs f, a call that waits for the other ranks outside c (an NCCL
// collective, a device synchronisation after one), under c's watchdog: if
// it waits longer than c's timeout the job is aborted. On a group without
// a watchdog it just runs f.
func Guard(c Comm, op string, f func() error) error {
	m, ok := c.(*mpiComm)
	if !ok {
		return f()
	}
	m.ext.begin(op)
	defer m.ext.end()
	return f()
}

func mpiError(rc C.int) string {
	var buf [1024]C.char
	C.rl_mpi_error_string(rc, &buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.size }
func (c *mpiComm) LocalRank() int { return c.localRank }
func (c *mpiComm) LocalSize() int { return c.localSize }
func (c *mpiComm) String() string { return c.desc }

func (c *mpiComm) Barrier() error {
	return c.call("MPI_Barrier", func() C.int { return C.rl_mpi_barrier() })
}

func (c *mpiComm) Bcast(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("broadcast from rank %d in a group of %d", root, c.size)
	}
	for off := 0; off < len(buf); off += maxMPIBytes {
		part := buf[off:min(off+maxMPIBytes, len(buf))]
		err := c.call("MPI_Bcast", func() C.int {
			return C.rl_mpi_bcast(unsafe.Pointer(&part[0]), C.int(len(part)), C.int(root))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *mpiComm) AllGatherV(send, recv []byte, counts []int) error {
	if err := checkCounts(counts, c.size, len(recv)); err != nil {
		return fmt.Errorf("all-gather: %w", err)
	}
	if counts[c.rank] != len(send) {
		return fmt.Errorf("all-gather: rank %d sends %d bytes, counts say %d", c.rank, len(send), counts[c.rank])
	}
	if len(recv) > maxMPIBytes {
		return fmt.Errorf("all-gather of %d bytes: split it below 2 GiB", len(recv))
	}
	cnt, disp := cInts(counts)
	return c.call("MPI_Allgatherv", func() C.int {
		return C.rl_mpi_allgatherv(bytePtr(send), C.int(len(send)), bytePtr(recv), &cnt[0], &disp[0])
	})
}

func (c *mpiComm) AllToAllV(send []byte, sendCounts []int, recv []byte, recvCounts []int) error {
	if err := checkCounts(sendCounts, c.size, len(send)); err != nil {
		return fmt.Errorf("all-to-all send: %w", err)
	}
	if err := checkCounts(recvCounts, c.size, len(recv)); err != nil {
		return fmt.Errorf("all-to-all receive: %w", err)
	}
	if len(send) > maxMPIBytes || len(recv) > maxMPIBytes {
		return fmt.Errorf("all-to-all of %d/%d bytes: split it below 2 GiB", len(send), len(recv))
	}
	sc, sd := cInts(sendCounts)
	rc, rd := cInts(recvCounts)
	return c.call("MPI_Alltoallv", func() C.int {
		return C.rl_mpi_alltoallv(bytePtr(send), &sc[0], &sd[0], bytePtr(recv), &rc[0], &rd[0])
	})
}

func (c *mpiComm) Abort(code int, msg string) {
	if code == 0 {
		code = 1
	}
	fmt.Fprintln(os.Stderr, "rltrain:", msg)
	// MPI_Abort asks the launcher to end every rank; should it not
	// return promptly (it may wait on a lock the hung call holds), the
	// process ends anyway and the launcher sees a rank exit without
	// MPI_Finalize, which also ends the job.
	go func() {
		time.Sleep(10 * time.Second)
		os.Exit(code)
	}()
	C.rl_mpi_abort(C.int(code))
	os.Exit(code)
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	if rc := C.rl_mpi_finalize(); rc != 0 {
		return fmt.Errorf("MPI_Finalize: %s", mpiError(rc))
	}
	return nil
}

// cInts returns counts and their prefix sums (displacements) as C ints.
func cInts(counts []int) (cnt, disp []C.int) {
	cnt = make([]C.int, len(counts))
	disp = make([]C.int, len(counts))
	off := 0
	for i, n := range counts {
		cnt[i], disp[i] = C.int(n), C.int(off)
		off += n
	}
	return cnt, disp
}

// bytePtr is &b[0], or a valid dummy pointer for an empty slice (MPI may
// not accept NULL even for zero counts).
func bytePtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&zeroByte)
	}
	return unsafe.Pointer(&b[0])
}

var zeroByte [8]byte

// abortLocal ends a one-process run.
func abortLocal(code int, msg string) {
	if code == 0 {
		code = 1
	}
	fmt.Fprintln(os.Stderr, "rltrain:", msg)
	os.Exit(code)
}
