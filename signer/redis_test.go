package signer

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/redis"
)

// TestRedisTwoReplicasMintOnce runs two brokers, each with its own connection to one real
// redis-server, as two replicas would: a burst on both makes one STS call, and Redis holds only
// ciphertext under hashed keys.
func TestRedisTwoReplicasMintOnce(t *testing.T) {
	url := testenv.Redis(t)
	awsEnv(t)
	sts := newFakeSTS(t, time.Now)
	sts.delay = 100 * time.Millisecond
	key := testKey(t)
	var stores []store.Store
	var replicas []*AWSBroker
	for range 2 {
		st, err := redis.New(context.Background(), redis.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores = append(stores, st)
		replicas = append(replicas, newTestAWSBroker(t, st, key, nil))
	}
	target := awsTarget(sts.URL)
	m := MintRequest{SessionName: "alice@example.com", Policy: SessionPolicy("s3:ListAllMyBuckets", "")}

	var wg sync.WaitGroup
	start := make(chan struct{})
	ids := make([]string, 200)
	for i := range ids {
		wg.Go(func() {
			<-start
			c, err := replicas[i%2].Credentials(context.Background(), target, m)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = c.AccessKeyID
		})
	}
	close(start)
	wg.Wait()
	if got := sts.calls.Load(); got != 1 {
		t.Fatalf("STS calls = %d across two Redis replicas, want 1", got)
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("replica call %d got %q, call 0 got %q", i, id, ids[0])
		}
	}

	ck := replicas[0].cacheKey(target, SessionName(m.SessionName), m.Policy)
	if strings.Contains(ck, "alice") || strings.Contains(ck, "ListAllMyBuckets") {
		t.Errorf("cache key %q names the identity or policy", ck)
	}
	raw, err := stores[1].Get(context.Background(), ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"minted-secret", "minted-token", "ASIAMINTED"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("Redis holds %q in clear", leak)
		}
	}
	if _, err := stores[0].Get(context.Background(), lockKey(ck)); err == nil {
		t.Error("mint lock left in Redis")
	}
}
