package dist

import (
	"fmt"
	"sync"
)

// NewGroup returns n communicators that talk through shared memory, one
// per goroutine: the ranks of an in-process job, for tests of code written
// against Comm. Abort panics with the message.
func NewGroup(n int) []Comm {
	g := &group{n: n, posts: make([]post, n)}
	g.cond = sync.NewCond(&g.mu)
	out := make([]Comm, n)
	for r := range out {
		out[r] = &member{g: g, rank: r}
	}
	return out
}

type group struct {
	n     int
	mu    sync.Mutex
	cond  *sync.Cond
	count int // ranks arrived at the current barrier
	gen   int // barrier generation
	posts []post
}

// post is what one rank offers in the current collective.
type post struct {
	buf    []byte
	counts []int
	root   int
}

func (g *group) barrier() {
	g.mu.Lock()
	gen := g.gen
	g.count++
	if g.count == g.n {
		g.count = 0
		g.gen++
		g.cond.Broadcast()
	} else {
		for gen == g.gen {
			g.cond.Wait()
		}
	}
	g.mu.Unlock()
}

// exchange posts p, waits for every rank, runs read, and waits again so no
// rank changes its buffer while another still reads it.
func (m *member) exchange(p post, read func(posts []post)) {
	m.g.posts[m.rank] = p
	m.g.barrier()
	read(m.g.posts)
	m.g.barrier()
}

type member struct {
	g    *group
	rank int
}

func (m *member) Rank() int      { return m.rank }
func (m *member) Size() int      { return m.g.n }
func (m *member) LocalRank() int { return m.rank }
func (m *member) LocalSize() int { return m.g.n }
func (m *member) Barrier() error { m.g.barrier(); return nil }
func (m *member) String() string { return fmt.Sprintf("in-process group, %d ranks", m.g.n) }
func (m *member) Close() error   { return nil }
func (m *member) Abort(code int, msg string) {
	panic(fmt.Sprintf("rank %d aborts (%d): %s", m.rank, code, msg))
}

func (m *member) Bcast(buf []byte, root int) error {
	if root < 0 || root >= m.g.n {
		return fmt.Errorf("broadcast from rank %d in a group of %d", root, m.g.n)
	}
	var err error
	m.exchange(post{buf: buf, root: root}, func(ps []post) {
		if len(ps[root].buf) != len(buf) {
			err = fmt.Errorf("broadcast: rank %d has %d bytes, root %d has %d", m.rank, len(buf), root, len(ps[root].buf))
			return
		}
		if m.rank != root {
			copy(buf, ps[root].buf)
		}
	})
	return err
}

func (m *member) AllGatherV(send, recv []byte, counts []int) error {
	if err := checkCounts(counts, m.g.n, len(recv)); err != nil {
		return fmt.Errorf("all-gather: %w", err)
	}
	var err error
	m.exchange(post{buf: send}, func(ps []post) {
		off := 0
		for i, p := range ps {
			if len(p.buf) != counts[i] {
				err = fmt.Errorf("all-gather: rank %d sends %d bytes, counts say %d", i, len(p.buf), counts[i])
				return
			}
			copy(recv[off:], p.buf)
			off += counts[i]
		}
	})
	return err
}

func (m *member) AllToAllV(send []byte, sendCounts []int, recv []byte, recvCounts []int) error {
	if err := checkCounts(sendCounts, m.g.n, len(send)); err != nil {
		return fmt.Errorf("all-to-all send: %w", err)
	}
	if err := checkCounts(recvCounts, m.g.n, len(recv)); err != nil {
		return fmt.Errorf("all-to-all receive: %w", err)
	}
	var err error
	m.exchange(post{buf: send, counts: sendCounts}, func(ps []post) {
		off := 0
		for i, p := range ps {
			start := 0
			for j := 0; j < m.rank; j++ {
				start += p.counts[j]
			}
			if p.counts[m.rank] != recvCounts[i] {
				err = fmt.Errorf("all-to-all: rank %d sends %d bytes to rank %d, which expects %d",
					i, p.counts[m.rank], m.rank, recvCounts[i])
				return
			}
			copy(recv[off:off+recvCounts[i]], p.buf[start:start+recvCounts[i]])
			off += recvCounts[i]
		}
	})
	return err
}
