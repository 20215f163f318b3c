package authn

import (
	"context"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

// The same race as TestSessionRefreshConcurrentOnce, with the replicas sharing a real Redis: the
// refresh lock is Redis's SET NX PX.
func TestSessionRefreshConcurrentOnceRedis(t *testing.T) {
	st, err := redisstore.New(context.Background(), redisstore.Config{URL: testenv.Redis(t), KeyPrefix: "airlock-test:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	testConcurrentRefreshOnce(t, st)
}
