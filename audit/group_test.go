package audit

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
)

// slowBatchStore is the in-memory store with a slow AppendBatch (a Redis round trip), so that
// events queue up behind it; it counts batches and can fail them.
type slowBatchStore struct {
	*memory.Store
	batches, events atomic.Int64
	fail            atomic.Bool
}

var errBatch = errors.New("redis: connection reset")

func (s *slowBatchStore) AppendBatch(ctx context.Context, stream string, maxLen int64, fn func([]byte) ([][]byte, []byte, error)) ([]string, error) {
	time.Sleep(2 * time.Millisecond)
	if s.fail.Load() {
		// Run fn as a store would, so that a failed group leaves the events' chain fields
		// computed and the next group must still chain from the real head.
		if _, _, err := fn(nil); err != nil {
			return nil, err
		}
		return nil, errBatch
	}
	ids, err := s.Store.AppendBatch(ctx, stream, maxLen, fn)
	if err == nil {
		s.batches.Add(1)
		s.events.Add(int64(len(ids)))
	}
	return ids, err
}

var _ store.BatchAppender = (*slowBatchStore)(nil)

// TestGroupCommit records from many goroutines through a slow store: events are appended in
// groups, every acknowledged event is in the stream and the file exactly once, both chains
// verify, a canceled caller's event is either recorded and acknowledged or absent, and a
// failed group fails every event in it and leaves nothing behind.
func TestGroupCommit(t *testing.T) {
	st := &slowBatchStore{Store: memory.New(nil)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := newTestLog(t, LogConfig{Store: st, File: path})
	const writers, each = 16, 40
	var mu sync.Mutex
	acked := map[string]bool{}
	refused := map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if i%5 == 4 { // some callers give up while queued or in flight
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
				}
				e := sampleEvent(w*1000 + i)
				err := l.Record(ctx, e)
				cancel()
				mu.Lock()
				if err == nil {
					if e.Hash == "" || e.ID == "" {
						t.Errorf("acknowledged event without hash or ID: %+v", e)
					}
					acked[e.RequestID] = true
				} else if errors.Is(err, context.DeadlineExceeded) {
					refused[e.RequestID] = true
				} else {
					t.Errorf("Record: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if st.batches.Load() >= st.events.Load() {
		t.Fatalf("%d batches for %d events: no group commit happened", st.batches.Load(), st.events.Load())
	}
	t.Logf("%d events in %d batches, %d refused on cancellation", st.events.Load(), st.batches.Load(), len(refused))
	if int(st.events.Load()) != len(acked) {
		t.Fatalf("%d events appended, %d acknowledged", st.events.Load(), len(acked))
	}

	checkRecorded := func(want map[string]bool) {
		t.Helper()
		res, err := VerifyStore(context.Background(), st, DefaultStream)
		if err != nil || res.Events != len(want) {
			t.Fatalf("VerifyStore: %+v %v, want %d events", res, err, len(want))
		}
		res, err = VerifyFiles(ChainFile, path)
		if err != nil || res.Events != len(want) || !res.Complete() {
			t.Fatalf("VerifyFiles: %+v %v, want %d events", res, err, len(want))
		}
		entries, err := st.Range(context.Background(), DefaultStream, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, en := range entries {
			var e Event
			if err := unmarshalEvent(en.Value, &e); err != nil {
				t.Fatal(err)
			}
			if !want[e.RequestID] || seen[e.RequestID] {
				t.Fatalf("stream holds %s: not acknowledged, or twice", e.RequestID)
			}
			seen[e.RequestID] = true
		}
	}
	checkRecorded(acked)

	// A failed group fails all its callers and leaves neither the stream nor the file changed.
	st.fail.Store(true)
	var failed atomic.Int64
	for i := range 8 {
		wg.Go(func() {
			if err := l.Record(context.Background(), sampleEvent(90000+i)); errors.Is(err, errBatch) {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 8 {
		t.Fatalf("%d of 8 Records failed with the store's error", failed.Load())
	}
	checkRecorded(acked)
	st.fail.Store(false)
	e := sampleEvent(99999)
	if err := l.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	acked[e.RequestID] = true
	checkRecorded(acked)

	// After Close, queued and new events are refused.
	_ = l.Close()
	if err := l.Record(context.Background(), sampleEvent(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close = %v, want ErrClosed", err)
	}
}

// hangingBatchStore is the in-memory store whose AppendBatch hangs, while hang is set, until
// its context ends: a store that stopped answering.
type hangingBatchStore struct {
	*memory.Store
	hang atomic.Bool
}

func (s *hangingBatchStore) AppendBatch(ctx context.Context, stream string, maxLen int64, fn func([]byte) ([][]byte, []byte, error)) ([]string, error) {
	if s.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.AppendBatch(ctx, stream, maxLen, fn)
}

// TestGroupCommitBoundedWhenStoreHangs: a group commit on a store that does not answer ends
// at the commit deadline, the callers' Records fail (their calls are refused), nothing is
// recorded, and the next commit after the store recovers gets a fresh deadline and succeeds.
func TestGroupCommitBoundedWhenStoreHangs(t *testing.T) {
	st := &hangingBatchStore{Store: memory.New(nil)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := newTestLog(t, LogConfig{Store: st, File: path})
	l.mu.Lock()
	l.commitCtx.timeout = 50 * time.Millisecond // instead of groupCommitTimeout
	l.mu.Unlock()
	ctx := context.Background()
	if err := l.Record(ctx, sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	st.hang.Store(true)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 4 {
		wg.Go(func() {
			if err := l.Record(ctx, sampleEvent(10+i)); errors.Is(err, context.DeadlineExceeded) {
				failed.Add(1)
			} else {
				t.Errorf("Record on a hanging store = %v, want a deadline error", err)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 4 {
		t.Fatalf("%d of 4 Records failed", failed.Load())
	}
	st.hang.Store(false)
	if err := l.Record(ctx, sampleEvent(2)); err != nil {
		t.Fatalf("Record after the store recovered: %v", err)
	}
	res, err := VerifyFiles(ChainFile, path)
	if err != nil || res.Events != 2 {
		t.Fatalf("file: %+v %v, want the 2 events recorded", res, err)
	}
}

// leasedContext reuses its context while enough of it is left and makes a new one after it
// ended.
func TestLeasedContext(t *testing.T) {
	c := leasedContext{parent: context.Background(), timeout: time.Hour}
	first := c.get()
	if c.get() != first {
		t.Fatal("a context with most of its time left was not reused")
	}
	if d, ok := first.Deadline(); !ok || time.Until(d) > time.Hour {
		t.Fatalf("deadline %v %v", d, ok)
	}
	c.cancel()
	second := c.get()
	if second == first || second.Err() != nil {
		t.Fatal("an ended context was handed out again")
	}
	c.deadline = time.Now().Add(c.timeout/2 - time.Second) // as if half an hour had passed
	if renewed := c.get(); renewed == second || time.Until(c.deadline) < c.timeout/2 {
		t.Fatal("a context with less than half its time left was not renewed")
	}
}
