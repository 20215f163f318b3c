package memory_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
	"github.com/airlockhq/airlock/store/storetest"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newStore(t *testing.T) (*memory.Store, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := memory.New(clock.Now)
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func(time.Duration)) {
		s, clock := newStore(t)
		return s, clock.Advance
	})
}

// One embedded store is every replica there is: both handles are the same store.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		s, _ := newStore(t)
		return s, s
	})
}

func TestExpiredKeysAreSweptWithoutReads(t *testing.T) {
	s, clock := newStore(t)
	ctx := t.Context()
	for i := range 100 {
		if err := s.Set(ctx, fmt.Sprintf("key%d", i), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)
	if err := s.Set(ctx, "trigger", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("%d keys held after every other key expired, want 1", n)
	}
}

func TestStreamIDsStayOrderedWhenTheClockStepsBack(t *testing.T) {
	s, clock := newStore(t)
	ctx := t.Context()
	noop := func([]byte) ([]byte, []byte, error) { return []byte("e"), nil, nil }
	var ids []string
	for _, step := range []time.Duration{0, time.Second, -time.Hour, 0, 2 * time.Hour} {
		clock.Advance(step)
		id, err := s.Append(ctx, "log", 0, noop)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		got, err := s.Range(ctx, "log", ids[i-1], 1)
		if err != nil || len(got) != 1 || got[0].ID != ids[i] {
			t.Fatalf("Range after %s = %v, %v; want %s (ids %v)", ids[i-1], got, err, ids[i], ids)
		}
	}
}

func BenchmarkGet(b *testing.B)    { storetest.BenchmarkGet(b, memory.New(nil)) }
func BenchmarkSet(b *testing.B)    { storetest.BenchmarkSet(b, memory.New(nil)) }
func BenchmarkAppend(b *testing.B) { storetest.BenchmarkAppend(b, memory.New(nil)) }
