package audit

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store/redis"
)

// TestMultiReplicaChainOnRedis runs two replicas (two Logs, two store clients, two files) on one
// real Redis, writing concurrently. The stream holds one global chain that verifies; each
// replica's file verifies alone; live subscribers see the other replica's events.
func TestMultiReplicaChainOnRedis(t *testing.T) {
	url := testenv.Redis(t)
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *Log {
		st, err := redis.New(ctx, redis.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return newTestLog(t, LogConfig{Store: st, Replica: name, File: filepath.Join(dir, name, "audit.jsonl")})
	}
	a, b := open("a"), open("b")
	// Live: a's subscriber gets b's events too (read while the replicas write).
	live, stop := a.Subscribe(Filter{Identity: "alice@example.com"})
	defer stop()
	liveFromB := make(chan int, 1)
	go func() {
		n := 0
		timeout := time.After(20 * time.Second)
		for n < 2*100*4 {
			select {
			case e, ok := <-live:
				if !ok {
					liveFromB <- n
					return
				}
				if e.Replica == "b" {
					n++
				}
			case <-timeout:
				liveFromB <- n
				return
			}
		}
		liveFromB <- n
	}()

	const writers, each = 4, 100
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := l.Record(ctx, sampleEvent(w*1000+i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()

	res, err := VerifyStore(ctx, a.cfg.Store, a.cfg.Stream)
	if err != nil || res.Events != 2*writers*each || !res.Complete() {
		t.Fatalf("global chain: %+v %v", res, err)
	}
	for _, name := range []string{"a", "b"} {
		res, err := VerifyFiles(ChainFile, filepath.Join(dir, name, "audit.jsonl"))
		if err != nil || res.Events != writers*each || !res.Complete() {
			t.Fatalf("file of replica %s: %+v %v", name, res, err)
		}
	}
	// The files interleave in the global chain: the stream verified above is their merge.
	all, err := a.Since(ctx, "", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	switches := 0
	for i := 1; i < len(all); i++ {
		if all[i].Replica != all[i-1].Replica {
			switches++
		}
	}
	if switches < 2 {
		t.Fatalf("replicas did not interleave (%d switches): the test does not test concurrency", switches)
	}

	stop()
	if n := <-liveFromB; n < writers*each*9/10 {
		t.Fatalf("live: only %d of b's %d events reached a's subscriber", n, writers*each)
	}

	// A restarted replica continues both chains.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2 := open("a")
	for i := range 10 {
		if err := a2.Record(ctx, sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	res, err = VerifyStore(ctx, a2.cfg.Store, a2.cfg.Stream)
	if err != nil || res.Events != 2*writers*each+10 {
		t.Fatalf("after restart: %+v %v", res, err)
	}
	if res, err := VerifyFiles(ChainFile, filepath.Join(dir, "a", "audit.jsonl")); err != nil || res.Events != writers*each+10 {
		t.Fatalf("file after restart: %+v %v", res, err)
	}
}
