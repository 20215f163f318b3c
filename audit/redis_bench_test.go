package audit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store/redis"
)

// BenchmarkRecordParallelRedis records from 8 goroutines per CPU
// into a real Redis and a file, as a replica under load does: what group commit is for.
func BenchmarkRecordParallelRedis(b *testing.B) {
	url := testenv.Redis(b)
	st, err := redis.New(context.Background(), redis.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	benchRecordParallel(b, newTestLog(b, LogConfig{Store: st, File: filepath.Join(b.TempDir(), "audit.jsonl")}))
}
