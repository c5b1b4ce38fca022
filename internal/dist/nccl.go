package dist

/*
#include <stdlib.h>
#include "nccl_dl.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// NCCLLibraryEnv names the variable that overrides which NCCL library is
// loaded (make gpu-standin's bin/standin/libnccl.so.2 in CI).
const NCCLLibraryEnv = "RLTRAIN_NCCL_LIB"

// DType is an element type of an NCCL collective.
type DType int

// ncclDataType_t values.
const (
	Int64   DType = C.RL_NCCL_INT64
	Float32 DType = C.RL_NCCL_FLOAT32
	Float64 DType = C.RL_NCCL_FLOAT64
)

func (d DType) size() int {
	switch d {
	case Int64, Float64:
		return 8
	case Float32:
		return 4
	}
	return 0
}

// NCCL is a communicator over the GPUs of the job's ranks, one per rank.
// Its collectives take device pointers and a CUDA stream (0: the legacy
// default stream, which orders them after the kernels that produced the
// data); they return once the work is enqueued. Real NCCL needs the rank's
// CUDA context current on the calling OS thread for every call, as
// cuBLAS does.
type NCCL struct {
	comm    C.uintptr_t
	rank    int
	size    int
	lib     string
	version int
	closed  bool
}

var ncclOpen struct {
	sync.Mutex
	lib string
}

func loadNCCL() (string, error) {
	ncclOpen.Lock()
	defer ncclOpen.Unlock()
	if ncclOpen.lib != "" {
		return ncclOpen.lib, nil
	}
	names := []string{"libnccl.so.2", "libnccl.so"}
	if lib := os.Getenv(NCCLLibraryEnv); lib != "" {
		names = []string{lib}
	}
	var errs []string
	for _, name := range names {
		cname := C.CString(name)
		var msg [512]C.char
		rc := C.rl_nccl_open(cname, &msg[0], C.int(len(msg)))
		C.free(unsafe.Pointer(cname))
		if rc == 0 {
			ncclOpen.lib = name
			return name, nil
		}
		errs = append(errs, C.GoString(&msg[0]))
	}
	return "", fmt.Errorf("load NCCL (tried %s; set %s to its path): %s",
		strings.Join(names, ", "), NCCLLibraryEnv, strings.Join(errs, "; "))
}

// NCCLAvailable reports whether an NCCL library can be loaded here.
func NCCLAvailable() bool {
	_, err := loadNCCL()
	return err == nil
}

func ncclError(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (ncclResult_t %d)", op, C.GoString(C.rl_nccl_error_string(rc)), int(rc))
}

// OpenNCCL creates the NCCL communicator of c's ranks: rank 0 asks NCCL for
// a unique id, c broadcasts it, every rank joins with its MPI rank. Every
// rank must call it, with its device's context current.
func OpenNCCL(c Comm) (*NCCL, error) {
	lib, err := loadNCCL()
	if err != nil {
		return nil, err
	}
	n := &NCCL{rank: c.Rank(), size: c.Size(), lib: lib}
	var v C.int
	if err := ncclError("ncclGetVersion", C.rl_nccl_version(&v)); err != nil {
		return nil, err
	}
	n.version = int(v)
	id := make([]byte, C.RL_NCCL_UNIQUE_ID_BYTES)
	// Every rank learns whether rank 0 got an id, so that a failure there
	// is an error on all ranks rather than a hang in ncclCommInitRank.
	status := []byte{0}
	if c.Rank() == 0 {
		if rc := C.rl_nccl_unique_id((*C.char)(unsafe.Pointer(&id[0]))); rc != 0 {
			status[0] = 1
			err = ncclError("ncclGetUniqueId", rc)
		}
	}
	if berr := c.Bcast(status, 0); berr != nil {
		return nil, fmt.Errorf("broadcast the NCCL id: %w", berr)
	}
	if status[0] != 0 {
		if err == nil {
			err = fmt.Errorf("rank 0 could not get an NCCL id")
		}
		return nil, err
	}
	if err := c.Bcast(id, 0); err != nil {
		return nil, fmt.Errorf("broadcast the NCCL id: %w", err)
	}
	var comm C.uintptr_t
	err = Guard(c, "ncclCommInitRank", func() error {
		return ncclError("ncclCommInitRank", C.rl_nccl_init_rank(&comm, C.int(n.size), (*C.char)(unsafe.Pointer(&id[0])), C.int(n.rank)))
	})
	if err != nil {
		return nil, fmt.Errorf("rank %d of %d: %w", n.rank, n.size, err)
	}
	n.comm = comm
	return n, nil
}

// String names the library and version ("NCCL 2.21.5 (libnccl.so.2)").
func (n *NCCL) String() string {
	v := n.version
	major, minor, patch := v/10000, v/100%100, v%100
	if v < 20900 { // NCCL_VERSION's older encoding: X*1000 + Y*100 + Z
		major, minor, patch = v/1000, v/100%10, v%100
	}
	return fmt.Sprintf("NCCL %d.%d.%d (%s)", major, minor, patch, n.lib)
}

// AllReduceSum enqueues the sum over ranks of count values at send into
// recv (send == recv: in place) on stream.
func (n *NCCL) AllReduceSum(send, recv uintptr, count int, dt DType, stream uintptr) error {
	if n.closed {
		return fmt.Errorf("ncclAllReduce: communicator closed")
	}
	if dt.size() == 0 {
		return fmt.Errorf("ncclAllReduce: unsupported data type %d", int(dt))
	}
	if count < 0 {
		return fmt.Errorf("ncclAllReduce: %d values", count)
	}
	rc := C.rl_nccl_all_reduce_sum(C.uint64_t(send), C.uint64_t(recv), C.size_t(count), C.int(dt), n.comm, C.uintptr_t(stream))
	return ncclError(fmt.Sprintf("ncclAllReduce of %d values", count), rc)
}

// Group runs f between ncclGroupStart and ncclGroupEnd, so that the
// collectives f enqueues (the buckets of one gradient) launch together.
func (n *NCCL) Group(f func() error) error {
	if err := ncclError("ncclGroupStart", C.rl_nccl_group_start()); err != nil {
		return err
	}
	ferr := f()
	if err := ncclError("ncclGroupEnd", C.rl_nccl_group_end()); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

// AsyncError reports an error NCCL met while running enqueued work (a
// peer that failed, a network error).
func (n *NCCL) AsyncError() error {
	var e C.int
	if err := ncclError("ncclCommGetAsyncError", C.rl_nccl_async_error(n.comm, &e)); err != nil {
		return err
	}
	return ncclError("NCCL", e)
}

// Close destroys the communicator.
func (n *NCCL) Close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	return ncclError("ncclCommDestroy", C.rl_nccl_destroy(n.comm))
}

// Abort frees the communicator without waiting for outstanding work.
func (n *NCCL) Abort() error {
	if n.closed {
		return nil
	}
	n.closed = true
	return ncclError("ncclCommAbort", C.rl_nccl_abort(n.comm))
}
