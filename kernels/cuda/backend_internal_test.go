package cuda

import "testing"

func TestTemporariesAreReusedAndFreed(t *testing.T) {
	e := NewEmu()
	b := New(e)
	p := b.temp(12)
	b.release(p)
	if q := b.temp(12); q != p {
		t.Errorf("a released temporary of the same size was not reused")
	} else {
		b.release(q)
	}
	r := b.temp(16)
	b.release(r)
	x := b.Alloc(100)
	b.Free(x)
	b.logitScratch(1000)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.Live(); n != 0 {
		t.Errorf("%d device allocations left after Close", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing a non-temporary did not panic")
		}
	}()
	b2 := New(NewEmu())
	b2.release(dev(b2.Alloc(4)))
}
