package redis_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/redis"
	"github.com/airlockhq/airlock/store/storetest"
)

var prefixes atomic.Int64

// uniquePrefix isolates the subtests that share one redis-server.
func uniquePrefix() string {
	return fmt.Sprintf("test%d:", prefixes.Add(1))
}

func open(t testing.TB, url, prefix string) *redis.Store {
	t.Helper()
	s, err := redis.New(context.Background(), redis.Config{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// Redis expires keys in real time: advancing the clock is waiting.
func sleep(d time.Duration) { time.Sleep(d) }

func TestConformance(t *testing.T) {
	url := testenv.Redis(t)
	storetest.Run(t, func(t *testing.T) (store.Store, func(time.Duration)) {
		return open(t, url, uniquePrefix()), sleep
	})
}

// Two clients on one Redis are two replicas.
func TestReplicas(t *testing.T) {
	url := testenv.Redis(t)
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := uniquePrefix()
		return open(t, url, prefix), open(t, url, prefix)
	})
}

// A one-node Redis Cluster still refuses transactions across hash slots, so this checks that
// the stream and its head share a slot and that everything works through ClusterClient.
func TestConformanceCluster(t *testing.T) {
	bin := testenv.Binary(t, "redis-server")
	port := testenv.FreePort(t)
	dir := t.TempDir()
	testenv.Start(t, nil, bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", dir, "--cluster-enabled", "yes",
		"--cluster-config-file", dir+"/nodes.conf")
	node := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer node.Close()
	testenv.WaitFor(t, "redis-server", 10*time.Second, func() error {
		return node.Ping(context.Background()).Err()
	})
	if err := node.ClusterAddSlotsRange(context.Background(), 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "cluster state ok", 20*time.Second, func() error {
		info, err := node.ClusterInfo(context.Background()).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return errors.New("cluster not ok yet")
		}
		return nil
	})
	url := fmt.Sprintf("redis+cluster://127.0.0.1:%d", port)
	storetest.Run(t, func(t *testing.T) (store.Store, func(time.Duration)) {
		return open(t, url, uniquePrefix()), sleep
	})
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		prefix := uniquePrefix()
		return open(t, url, prefix), open(t, url, prefix)
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	const password = "hunter2-very-secret"
	closedPort := testenv.FreePort(t)
	for _, tc := range []struct {
		name, url, wantInError string
	}{
		{"empty", "", "url is required"},
		{"unknown scheme", "http://user:" + password + "@example.com", "scheme"},
		{"unparsable", "redis://user:" + password + "@exa mple.com:6379", "invalid url"},
		{"bad port", "redis://user:" + password + "@127.0.0.1:port", "invalid url"},
		{"unknown option", "redis://user:" + password + "@127.0.0.1:6379/0?no_such_option=1", "127.0.0.1:6379"},
		{"sentinel without master", "redis+sentinel://user:" + password + "@127.0.0.1:26379", "master_name"},
		{"unreachable", fmt.Sprintf("redis://user:%s@127.0.0.1:%d/0", password, closedPort),
			fmt.Sprintf("cannot connect to 127.0.0.1:%d", closedPort)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redis.New(context.Background(), redis.Config{URL: tc.url})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error %q does not mention %q", err, tc.wantInError)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestNewRespectsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := redis.New(ctx, redis.Config{URL: fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a canceled context = %v", err)
	}
}

func TestPassword(t *testing.T) {
	bin := testenv.Binary(t, "redis-server")
	port := testenv.FreePort(t)
	const password, wrong = "right-horse-battery", "hunter2-very-secret"
	testenv.Start(t, nil, bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--requirepass", password)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.WaitFor(t, "redis-server", 10*time.Second, func() error {
		s, err := redis.New(context.Background(), redis.Config{URL: "redis://:" + password + "@" + addr})
		if err == nil {
			err = s.Close()
		}
		return err
	})

	s := open(t, "redis://default:"+password+"@"+addr+"/0", "")
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, err := redis.New(context.Background(), redis.Config{URL: "redis://default:" + wrong + "@" + addr + "/0"})
	if err == nil {
		t.Fatal("New succeeded with a wrong password")
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), password) {
		t.Fatalf("error %q contains a password", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %q does not name the host", err)
	}
	t.Logf("wrong password: %v", err)
}

// The layout in Redis is part of what operators see: prefixed keys, a stream with field "v"
// next to "<stream>:head", millisecond TTLs.
func TestKeyLayout(t *testing.T) {
	url := testenv.Redis(t)
	ctx := context.Background()
	raw := goredis.NewClient(mustParse(t, url))
	defer raw.Close()

	s := open(t, url, "") // the default prefix
	if err := s.Set(ctx, "k", []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	pttl, err := raw.PTTL(ctx, redis.DefaultKeyPrefix+"k").Result()
	if err != nil || pttl <= time.Second || pttl > 1500*time.Millisecond {
		t.Fatalf("PTTL(airlock:k) = %s, %v; want (1s, 1.5s]", pttl, err)
	}
	id, err := s.Append(ctx, "audit", 0, func([]byte) ([]byte, []byte, error) {
		return []byte("entry"), []byte("head"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := raw.XRange(ctx, "airlock:audit", "-", "+").Result()
	if err != nil || len(msgs) != 1 || msgs[0].ID != id || msgs[0].Values["v"] != "entry" {
		t.Fatalf("XRANGE airlock:audit = %v, %v", msgs, err)
	}
	if head, err := raw.Get(ctx, "airlock:audit:head").Result(); err != nil || head != "head" {
		t.Fatalf("GET airlock:audit:head = %q, %v", head, err)
	}

	other := open(t, url, "other:")
	if _, err := other.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a store with another prefix sees the key: %v", err)
	}
}

func mustParse(t *testing.T, url string) *goredis.Options {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Close stops what Subscribe started: the dispatcher and go-redis's receiver and health check.
func TestCloseStopsGoroutines(t *testing.T) {
	url := testenv.Redis(t)
	ctx := context.Background()
	before := runtime.NumGoroutine()
	s, err := redis.New(ctx, redis.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	var subs []store.Subscription
	for i := range 20 {
		sub, err := s.Subscribe(ctx, fmt.Sprintf("ch%d", i%5))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs {
		if _, ok := <-sub.C(); ok {
			t.Fatal("a subscription received after Close")
		}
	}
	testenv.WaitFor(t, "goroutines to stop", 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before New", n, before)
		}
		return nil
	})
}

// A context deadline shorter than go-redis's read timeout still ends a blocked call.
func TestDeadlineEndsUpdate(t *testing.T) {
	url := testenv.Redis(t)
	s := open(t, url, uniquePrefix())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Update(ctx, "k", func([]byte) ([]byte, time.Duration, error) {
		time.Sleep(200 * time.Millisecond) // the deadline passes while fn runs
		return []byte("v"), 0, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Update took %s after its deadline", d)
	}
}

func benchStore(b *testing.B) store.Store {
	return open(b, testenv.Redis(b), uniquePrefix())
}

func BenchmarkGet(b *testing.B)    { storetest.BenchmarkGet(b, benchStore(b)) }
func BenchmarkSet(b *testing.B)    { storetest.BenchmarkSet(b, benchStore(b)) }
func BenchmarkAppend(b *testing.B) { storetest.BenchmarkAppend(b, benchStore(b)) }

func TestDeleteAllRemovesOnlyItsPrefix(t *testing.T) {
	url := testenv.Redis(t)
	ctx := context.Background()
	prefix := uniquePrefix()
	// A prefix with glob characters must match only itself.
	s := open(t, url, prefix+"run[1]*:")
	near := open(t, url, prefix+"run1x:") // matched by the unescaped pattern "run[1]*:*"
	other := open(t, url, prefix+"other:")
	for i := range 2500 {
		if err := s.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "audit", 0, func([]byte) ([]byte, []byte, error) { return []byte("e"), []byte("h"), nil }); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*redis.Store{near, other} {
		if err := o.Set(ctx, "keep", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2502 { // 2,500 keys, the stream and its head
		t.Errorf("DeleteAll removed %d keys, want 2502", n)
	}
	if _, err := s.Get(ctx, "k7"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a deleted key is still there: %v", err)
	}
	for _, o := range []*redis.Store{near, other} {
		if v, err := o.Get(ctx, "keep"); err != nil || string(v) != "v" {
			t.Errorf("a key under another prefix was deleted: %q, %v", v, err)
		}
	}
}

// Update's compare-and-set: a write by another replica between Update's read and its write
// makes fn run again on the new value (or on nil when the key was deleted), and nothing fn
// computed from the stale value is stored.
func TestUpdateRerunsOnAConcurrentWrite(t *testing.T) {
	url := testenv.Redis(t)
	prefix := uniquePrefix()
	a, b := open(t, url, prefix), open(t, url, prefix)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		interfere func() error
		second    string // the old value fn must see on its second run ("<nil>" = absent)
	}{
		{"changed", func() error { return b.Set(ctx, "k", []byte("theirs"), 0) }, "theirs"},
		{"deleted", func() error { return b.Delete(ctx, "k") }, "<nil>"},
		{"emptied", func() error { return b.Set(ctx, "k", []byte{}, 0) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Set(ctx, "k", []byte("start"), 0); err != nil {
				t.Fatal(err)
			}
			var seen []string
			err := a.Update(ctx, "k", func(old []byte) ([]byte, time.Duration, error) {
				if old == nil {
					seen = append(seen, "<nil>")
				} else {
					seen = append(seen, string(old))
				}
				if len(seen) == 1 {
					if err := tc.interfere(); err != nil {
						return nil, 0, err
					}
				}
				return []byte("mine after " + seen[len(seen)-1]), time.Minute, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 2 || seen[0] != "start" || seen[1] != tc.second {
				t.Fatalf("fn saw %q, want [start %s]", seen, tc.second)
			}
			got, err := a.Get(ctx, "k")
			if want := "mine after " + tc.second; err != nil || string(got) != want {
				t.Fatalf("Get = %q, %v; want %q", got, err, want)
			}
		})
	}
}
