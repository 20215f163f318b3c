package audit

import (
	"context"
	"sync"

	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
	"github.com/airlockhq/airlock/store/redis"
)

// The live path across Logs on one in-memory store: what replicas on Redis do, in one process.
func TestLiveAcrossLogsMemory(t *testing.T) {
	st := memory.New(nil)
	a := newTestLog(t, LogConfig{Store: st, Replica: "a"})
	b := newTestLog(t, LogConfig{Store: st, Replica: "b"})
	testLiveAcrossLogs(t, a, b)
}

func TestLiveAcrossLogsRedis(t *testing.T) {
	url := testenv.Redis(t)
	open := func(name string) *Log {
		st, err := redis.New(context.Background(), redis.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return newTestLog(t, LogConfig{Store: st, Replica: name})
	}
	testLiveAcrossLogs(t, open("a"), open("b"))
}

// testLiveAcrossLogs records a burst of events concurrently on a, and checks that b's subscriber
// gets every one of them, once, in the order of the stream, and that a's own subscriber gets
// them once too, in the same order.
func testLiveAcrossLogs(t *testing.T, a, b *Log) {
	const writers, each = 16, 250
	const total = writers * each
	// Big enough that a subscriber that falls behind the burst loses nothing: this test is
	// about the path, not about the buffer.
	a.liveBuffer, b.liveBuffer = 2*total, 2*total
	atB, stopB := b.Subscribe(Filter{})
	defer stopB()
	atA, stopA := a.Subscribe(Filter{})
	defer stopA()

	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := a.Record(ctx, sampleEvent(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	stream, err := a.Since(ctx, "", 2*total)
	if err != nil || len(stream) != total {
		t.Fatalf("stream: %d events, %v", len(stream), err)
	}
	receive := func(name string, ch <-chan Event, n int) []Event {
		t.Helper()
		var got []Event
		guard := time.After(time.Minute) // only so that a lost event fails instead of hanging
		for len(got) < n {
			select {
			case e, ok := <-ch:
				if !ok {
					t.Fatalf("%s: subscription closed after %d events", name, len(got))
				}
				got = append(got, e)
			case <-guard:
				t.Fatalf("%s: %d of %d events arrived", name, len(got), n)
			}
		}
		return got
	}
	same := func(name string, got []Event) {
		t.Helper()
		for i := range stream {
			if got[i].ID != stream[i].ID || got[i].Hash != stream[i].Hash || got[i].Replica != "a" {
				t.Fatalf("%s: event %d is %s from %s, the stream has %s", name, i, got[i].ID, got[i].Replica, stream[i].ID)
			}
		}
	}
	same("b's subscriber", receive("b's subscriber", atB, total))
	same("a's subscriber", receive("a's subscriber", atA, total))

	// a's subscriber has had all of a's events; a marker recorded on b reaches it next, and
	// nothing (no event of a's delivered twice) may come before it.
	marker := sampleEvent(-1)
	if err := b.Record(ctx, marker); err != nil {
		t.Fatal(err)
	}
	if got := receive("a's subscriber", atA, 1); got[0].ID != marker.ID {
		t.Fatalf("a's subscriber got %s from %s again after the burst, before b's marker", got[0].ID, got[0].Replica)
	}
}

// untailable hides the store's Tail (and AppendBatch): a store that cannot be read as it grows.
type untailable struct{ store.Store }

// With a store that cannot be tailed, subscribers get this Log's events from its own queue.
func TestLiveWithoutTailer(t *testing.T) {
	l := newTestLog(t, LogConfig{Store: untailable{memory.New(nil)}, Replica: "a"})
	if l.tailer != nil || cap(l.async) == 0 {
		t.Fatalf("tailer %v, queue of %d: want none, and the queue", l.tailer, cap(l.async))
	}
	ch, stop := l.Subscribe(Filter{})
	defer stop()
	want := sampleEvent(1)
	if err := l.Record(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-ch:
		if e.ID != want.ID || e.Hash == "" {
			t.Fatalf("got %s (hash %q), want %s", e.ID, e.Hash, want.ID)
		}
	case <-time.After(time.Minute):
		t.Fatal("the event did not arrive")
	}
}

// The stream is read only while there are subscribers: the reader stops after the last one
// leaves and starts again for the next, which then gets what is recorded from then on, and no
// queue for the secondary sinks is allocated when nothing needs one.
func TestTailOnlyWhileSubscribed(t *testing.T) {
	st := memory.New(nil)
	l := newTestLog(t, LogConfig{Store: st, Replica: "a"})
	if cap(l.async) != 0 {
		t.Fatalf("queue of %d for the secondary sinks with none configured", cap(l.async))
	}
	tailing := func() bool {
		l.tailMu.Lock()
		defer l.tailMu.Unlock()
		return l.tailing
	}
	if tailing() {
		t.Fatal("reading the stream with no subscriber")
	}
	ctx := context.Background()
	next := func(ch <-chan Event) Event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(time.Minute):
			t.Fatal("no event arrived")
			return Event{}
		}
	}
	ch, stop := l.Subscribe(Filter{})
	if !tailing() {
		t.Fatal("not reading the stream with a subscriber")
	}
	first := sampleEvent(1)
	if err := l.Record(ctx, first); err != nil {
		t.Fatal(err)
	}
	if e := next(ch); e.ID != first.ID {
		t.Fatalf("got %s, want %s", e.ID, first.ID)
	}
	stop()
	// The reader notices within one read (tailBlock); a marker appended by another writer
	// wakes it at once.
	other := newTestLog(t, LogConfig{Store: st, Replica: "b"})
	if err := other.Record(ctx, sampleEvent(2)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); tailing(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still reading the stream a minute after the last subscriber left")
		}
	}
	// Recorded while nobody listened: not delivered to the next subscriber.
	if err := l.Record(ctx, sampleEvent(3)); err != nil {
		t.Fatal(err)
	}
	ch, stop = l.Subscribe(Filter{})
	defer stop()
	fourth := sampleEvent(4)
	if err := other.Record(ctx, fourth); err != nil {
		t.Fatal(err)
	}
	if e := next(ch); e.ID != fourth.ID || e.Replica != "b" {
		t.Fatalf("got %s from %s, want %s from b", e.ID, e.Replica, fourth.ID)
	}
}
