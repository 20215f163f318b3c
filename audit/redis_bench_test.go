package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

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
	l := newTestLog(b, LogConfig{Store: st, File: filepath.Join(b.TempDir(), "audit.jsonl")})
	b.SetParallelism(8) // 16 goroutines on 2 CPUs, as the harness's concurrency 16
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			e := sampleEvent(1)
			e.Time = time.Time{}
			if err := l.Record(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
