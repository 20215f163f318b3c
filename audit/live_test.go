package audit

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
	"github.com/airlockhq/airlock/store/redis"
)

// sharedMemoryStore is the in-memory store seen as a shared one (it is not a *memory.Store), so
// that several Logs on it fan live events out to each other over its pub/sub, as replicas on
// Redis do. It checks the bounds of every live message.
type sharedMemoryStore struct {
	*memory.Store
	t                testing.TB
	messages, events atomic.Int64
}

func (s *sharedMemoryStore) Publish(ctx context.Context, channel string, msg []byte) error {
	lines := int64(bytes.Count(msg[nonceLen:], []byte{'\n'})) // the random nonce may hold a '\n'
	if lines == 0 || lines > maxLiveBatch || len(msg) > maxLiveBatchBytes+64<<10 || msg[len(msg)-1] != '\n' {
		s.t.Errorf("live message of %d lines, %d bytes, ending in %q", lines, len(msg), msg[len(msg)-1])
	}
	s.messages.Add(1)
	s.events.Add(lines)
	return s.Store.Publish(ctx, channel, msg)
}

// The live path across Logs on one in-memory store: what replicas on Redis do, in one process.
func TestLiveAcrossLogsMemory(t *testing.T) {
	st := &sharedMemoryStore{Store: memory.New(nil), t: t}
	a := newTestLog(t, LogConfig{Store: st, Replica: "a"})
	b := newTestLog(t, LogConfig{Store: st, Replica: "b"})
	testLiveAcrossLogs(t, a, b)
	t.Logf("%d events published in %d messages", st.events.Load(), st.messages.Load())
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
// them once too (not again through the store's pub/sub).
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

	// b has delivered all of a's messages; a marker recorded on b now reaches a after any of
	// a's own messages that the store's pub/sub brought back to it. Nothing but the marker may
	// come before it.
	marker := sampleEvent(-1)
	if err := b.Record(ctx, marker); err != nil {
		t.Fatal(err)
	}
	if got := receive("a's subscriber", atA, 1); got[0].ID != marker.ID {
		t.Fatalf("a's subscriber got %s from %s again after the burst, before b's marker", got[0].ID, got[0].Replica)
	}
}

// A live message holds several lines; the receiver splits it and delivers each in order, and
// drops messages with its own nonce.
func TestReceiveLiveSplitsMessages(t *testing.T) {
	st := &sharedMemoryStore{Store: memory.New(nil), t: t}
	l := newTestLog(t, LogConfig{Store: st, Replica: "b"})
	ch, stop := l.Subscribe(Filter{})
	defer stop()

	message := func(nonce []byte, ids ...string) []byte {
		msg := append([]byte{}, nonce...)
		for _, id := range ids {
			e := sampleEvent(0)
			e.ID, e.Replica, e.Time = id, "a", time.Unix(1700000000, 0).UTC()
			msg = appendEventJSON(msg, e)
			msg = append(msg, '\n')
		}
		return msg
	}
	publish := func(msg []byte) {
		t.Helper()
		if err := st.Publish(context.Background(), l.liveChannel, msg); err != nil {
			t.Fatal(err)
		}
	}
	other := []byte("othernon")
	publish(message(l.nonce[:], "own-1", "own-2")) // this Log's own: already delivered locally
	publish(message(other, "x-1", "x-2", "x-3"))
	publish(message(other, "x-4"))
	want := []string{"x-1", "x-2", "x-3", "x-4"}
	for i, id := range want {
		select {
		case e := <-ch:
			if e.ID != id || e.Replica != "a" {
				t.Fatalf("event %d: %s from %s, want %s", i, e.ID, e.Replica, id)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%d of %d events arrived", i, len(want))
		}
	}
}

var _ store.Store = (*sharedMemoryStore)(nil)
