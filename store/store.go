// Package store is Airlock's one interface for shared state: pending requests, grants, the
// credential cache, the audit stream and cross-replica notifications. Two implementations satisfy
// it: store/memory (the embedded single-replica default) and store/redis (any number of replicas).
// Both pass the same conformance suite in store/storetest. The store knows nothing of business
// rules; values are opaque bytes (callers encrypt secrets before they get here).
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get for an absent or expired key.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Update and Append when concurrent writers kept colliding.
var ErrConflict = errors.New("store: too much contention, try again")

// Store is everything Airlock keeps outside one process. A ttl of 0 means no expiry.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX sets key only if absent; it reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Delete(ctx context.Context, key string) error
	// Update atomically replaces key's value with fn(old). old is nil when the key is absent.
	// fn returning a nil value deletes the key; returning an error aborts with that error.
	// fn may be called more than once under contention and must not have side effects.
	Update(ctx context.Context, key string, fn func(old []byte) (value []byte, ttl time.Duration, err error)) error
	// IncrBy adds delta to an integer counter (absent counts as 0) and returns the new value.
	// ttl applies only when the counter is created.
	IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)

	// Sets index keys (e.g. the pending requests).
	SAdd(ctx context.Context, key string, members ...string) error
	SRem(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error)

	// Publish sends msg to every current subscriber of channel, on every replica. It does not
	// keep msg: the caller may reuse it once Publish has returned.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe receives what is published on channel from now on, until Close.
	Subscribe(ctx context.Context, channel string) (Subscription, error)

	// Append atomically reads the stream's head value, calls fn(head) to build the entry and
	// the new head, appends the entry and stores the head, as one step across replicas. This is
	// what keeps a hash chain linear when several replicas write. maxLen > 0 trims old entries.
	Append(ctx context.Context, stream string, maxLen int64, fn func(head []byte) (entry, newHead []byte, err error)) (id string, err error)
	// Range returns up to count entries after afterID ("" or "0" = from the start), oldest first.
	Range(ctx context.Context, stream, afterID string, count int64) ([]Entry, error)
	// Head returns the stream's current head value (nil when the stream is empty).
	Head(ctx context.Context, stream string) ([]byte, error)

	Ping(ctx context.Context) error
	Close() error
}

// Entry is one stream entry.
type Entry struct {
	ID    string
	Value []byte
}

// Subscription delivers published messages. C is closed after Close or when the store stops.
type Subscription interface {
	C() <-chan []byte
	Close() error
}

// BatchAppender is implemented by stores that can append several entries to a stream in one
// atomic step (it is optional: callers fall back to Append). AppendBatch reads the stream's
// head, calls fn(head) to build the entries, in order, and the new head, appends them all and
// stores the head, as one step across replicas: either every entry is appended or none is.
// fn may be called more than once under contention and must not have side effects. An empty
// batch appends nothing and leaves the head as it is. maxLen > 0 trims old entries. ids are the
// new entries' IDs, in order.
type BatchAppender interface {
	AppendBatch(ctx context.Context, stream string, maxLen int64, fn func(head []byte) (entries [][]byte, newHead []byte, err error)) (ids []string, err error)
}

// Tailer is implemented by stores that can wait for a stream's new entries; both stores do.
// Tail returns up to count entries after afterID, oldest first, waiting up to block for the
// first of them when there is none yet (block 0: do not wait). afterID "$" means the stream's
// end as it is when Tail is called, "" or "0" its start. next is the cursor for the following
// call: the ID of the last entry returned, or afterID resolved to an ID when none came, so that
// a reader that always passes next back misses nothing appended after its first call (unless
// trimming drops it first). The wait ends early when ctx ends, with ctx's error.
type Tailer interface {
	Tail(ctx context.Context, stream, afterID string, count int64, block time.Duration) (entries []Entry, next string, err error)
}

// AppendOne is Append done with AppendBatch and a batch of one, for stores whose one way to
// append is their batch append.
func AppendOne(ctx context.Context, b BatchAppender, stream string, maxLen int64, fn func(head []byte) (entry, newHead []byte, err error)) (string, error) {
	ids, err := b.AppendBatch(ctx, stream, maxLen, func(head []byte) ([][]byte, []byte, error) {
		entry, newHead, err := fn(head)
		if err != nil {
			return nil, nil, err
		}
		return [][]byte{entry}, newHead, nil
	})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}
