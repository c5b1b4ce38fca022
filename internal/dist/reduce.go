package dist

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"math"
	"unsafe"
)

// Number is an element type AllReduceSum adds.
type Number interface {
	~float32 | ~float64 | ~int64
}

// smallBytes: below this many bytes gathered (the vector times the ranks),
// every rank gathers every vector and adds them itself: one call instead
// of two.
const smallBytes = 64 << 10

// maxPieceBytes bounds one round of a large reduction, so every MPI buffer
// stays below 2 GiB.
const maxPieceBytes = 1 << 30

// Scratch is reusable memory for AllReduceSum; the zero value is ready.
type Scratch struct{ b []byte }

func (s *Scratch) bytes(n int) []byte {
	if s == nil {
		return make([]byte, n)
	}
	if cap(s.b) < n {
		s.b = make([]byte, n)
	}
	return s.b[:n]
}

// AllReduceSum replaces buf on every rank with the sum over ranks of buf,
// added in rank order: ((x0 + x1) + x2) + ... . Every rank gets the same
// bits, and so does every rerun with the same number of ranks. Every rank
// must pass a buffer of the same length. scratch may be nil.
//
// A large buffer is split into one slice per rank: rank j receives every
// rank's slice j, adds them in rank order and all ranks gather the sums
// (an all-to-all and an all-gather: each rank sends and receives
// 2(N-1)/N of the buffer, as a ring all-reduce does).
func AllReduceSum[T Number](c Comm, buf []T, scratch *Scratch) error {
	n := c.Size()
	if n == 1 || len(buf) == 0 {
		return nil
	}
	es := int(unsafe.Sizeof(buf[0]))
	if len(buf)*es*n <= smallBytes {
		return gatherSum(c, buf, scratch)
	}
	piece := max(maxPieceBytes/es, n)
	for off := 0; off < len(buf); off += piece {
		if err := scatterSumGather(c, buf[off:min(off+piece, len(buf))], scratch); err != nil {
			return err
		}
	}
	return nil
}

func gatherSum[T Number](c Comm, buf []T, scratch *Scratch) error {
	n, es := c.Size(), int(unsafe.Sizeof(buf[0]))
	all := scratch.bytes(len(buf) * es * n)
	counts := make([]int, n)
	for i := range counts {
		counts[i] = len(buf) * es
	}
	if err := c.AllGatherV(asBytes(buf), all, counts); err != nil {
		return fmt.Errorf("all-reduce of %d values: %w", len(buf), err)
	}
	vals := fromBytes[T](all)
	copy(buf, vals[:len(buf)])
	for r := 1; r < n; r++ {
		addInto(buf, vals[r*len(buf):(r+1)*len(buf)])
	}
	return nil
}

func scatterSumGather[T Number](c Comm, buf []T, scratch *Scratch) error {
	n, rank, es := c.Size(), c.Rank(), int(unsafe.Sizeof(buf[0]))
	bounds := func(j int) (int, int) { return j * len(buf) / n, (j + 1) * len(buf) / n }
	lo, hi := bounds(rank)
	mine := hi - lo
	sendCounts := make([]int, n)
	for j := range sendCounts {
		a, b := bounds(j)
		sendCounts[j] = (b - a) * es
	}
	recvCounts := make([]int, n)
	for i := range recvCounts {
		recvCounts[i] = mine * es
	}
	recv := scratch.bytes(n * mine * es)
	if err := c.AllToAllV(asBytes(buf), sendCounts, recv, recvCounts); err != nil {
		return fmt.Errorf("all-reduce of %d values (scatter): %w", len(buf), err)
	}
	vals := fromBytes[T](recv)
	acc := vals[:mine]
	for r := 1; r < n; r++ {
		addInto(acc, vals[r*mine:(r+1)*mine])
	}
	if err := c.AllGatherV(recv[:mine*es], asBytes(buf), sendCounts); err != nil {
		return fmt.Errorf("all-reduce of %d values (gather): %w", len(buf), err)
	}
	return nil
}

func addInto[T Number](dst, src []T) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

func asBytes[T any](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

func fromBytes[T any](b []byte) []T {
	var z T
	es := int(unsafe.Sizeof(z))
	if len(b) < es {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/es)
}

// AllGather returns every rank's value of v, in rank order (v's length
// must be the same on every rank).
func AllGather[T Number](c Comm, v []T) ([]T, error) {
	n := c.Size()
	if n == 1 {
		return append([]T(nil), v...), nil
	}
	var z T
	es := int(unsafe.Sizeof(z))
	out := make([]T, len(v)*n)
	counts := make([]int, n)
	for i := range counts {
		counts[i] = len(v) * es
	}
	if err := c.AllGatherV(asBytes(v), asBytes(out), counts); err != nil {
		return nil, err
	}
	return out, nil
}

// AllGatherBytes returns every rank's msg, indexed by rank; lengths may
// differ.
func AllGatherBytes(c Comm, msg []byte) ([][]byte, error) {
	lens, err := AllGather(c, []int64{int64(len(msg))})
	if err != nil {
		return nil, fmt.Errorf("gather lengths: %w", err)
	}
	counts := make([]int, len(lens))
	total := 0
	for i, l := range lens {
		counts[i] = int(l)
		total += int(l)
	}
	all := make([]byte, total)
	if err := c.AllGatherV(msg, all, counts); err != nil {
		return nil, err
	}
	out := make([][]byte, len(lens))
	off := 0
	for i, l := range counts {
		out[i] = all[off : off+l : off+l]
		off += l
	}
	return out, nil
}

// BcastBytes sends root's msg to every rank and returns it (other ranks'
// msg is ignored; lengths may differ).
func BcastBytes(c Comm, msg []byte, root int) ([]byte, error) {
	if c.Size() == 1 {
		return msg, nil
	}
	var l [8]byte
	if c.Rank() == root {
		binary.LittleEndian.PutUint64(l[:], uint64(len(msg)))
	}
	if err := c.Bcast(l[:], root); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(l[:])
	if n > math.MaxInt32*4 {
		return nil, fmt.Errorf("broadcast of %d bytes", n)
	}
	buf := make([]byte, n)
	if c.Rank() == root {
		copy(buf, msg)
	}
	if err := c.Bcast(buf, root); err != nil {
		return nil, err
	}
	return buf, nil
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// CheckSame verifies that every rank holds the same bytes (each rank
// hashes its own; the hashes are gathered). It returns nil when they agree
// and otherwise an error naming which ranks differ from rank 0. what
// names the data in the message.
func CheckSame(c Comm, what string, data ...[]byte) error {
	h := crc64.New(crcTable)
	for _, d := range data {
		_, _ = h.Write(d)
	}
	sums, err := AllGather(c, []int64{int64(h.Sum64())})
	if err != nil {
		return fmt.Errorf("compare %s across ranks: %w", what, err)
	}
	var differ []int
	for r, s := range sums {
		if s != sums[0] {
			differ = append(differ, r)
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("%s differ across ranks: rank 0 has checksum %016x, ranks %v differ from it",
			what, uint64(sums[0]), differ)
	}
	return nil
}

// Float32Bytes views v as bytes (for CheckSame).
func Float32Bytes(v []float32) []byte { return asBytes(v) }

// Float64Bytes views v as bytes.
func Float64Bytes(v []float64) []byte { return asBytes(v) }
