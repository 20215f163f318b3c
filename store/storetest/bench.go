package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store"
)

// BenchmarkGet measures reading one small value.
func BenchmarkGet(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := make([]byte, 256)
	if err := s.Set(ctx, "bench:get", value, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := s.Get(ctx, "bench:get"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSet measures writing one small value with a TTL.
func BenchmarkSet(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	i := 0
	for b.Loop() {
		i++
		if err := s.Set(ctx, "bench:set:"+strconv.Itoa(i%1024), value, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend measures one hash-chained append to a trimmed stream, as the audit log does.
func BenchmarkAppend(b *testing.B, s store.Store) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := appendChained(ctx, s, "bench:audit", 10000, strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}
