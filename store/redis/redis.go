// Package redis is the store.Store that lets any number of Airlock replicas share one Redis
// (standalone, Sentinel or Cluster, through go-redis). It means exactly what the embedded
// store/memory means (both pass store/storetest); the difference is that state survives
// restarts and that pub/sub, Update and Append work across replicas. Every key and channel is
// prefixed (Config.KeyPrefix) so that several deployments can share one Redis.
package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/store"
)

// Config says which Redis to use.
type Config struct {
	// URL is the Redis to connect to:
	//   redis://[user:password@]host:port/db, rediss://... (TLS), unix:///path/redis.sock
	//   redis+sentinel://[user:password@]sentinel:26379/db?master_name=NAME&addr=sentinel2:26379
	//   redis+cluster://[user:password@]node:6379?addr=node2:6379 (rediss+... for TLS)
	// Query parameters are go-redis options (dial_timeout=3s, pool_size=20, ...).
	URL string
	// KeyPrefix is put in front of every key and channel name. Default "airlock:".
	KeyPrefix string
}

// DefaultKeyPrefix is the KeyPrefix used when Config leaves it empty.
const DefaultKeyPrefix = "airlock:"

const (
	// pingTimeout bounds New's connectivity check when the caller's context has no sooner
	// deadline.
	pingTimeout = 5 * time.Second
	// maxTxAttempts bounds the compare-and-set loops of Update and Append. A
	// writer loses a round only when another writer commits, so with fewer concurrent
	// writers on one key than this, ErrConflict cannot happen.
	maxTxAttempts = 100
	// maxTxBackoff caps the random pause between two attempts, which spreads colliding
	// writers apart.
	maxTxBackoff = 8 * time.Millisecond
)

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	prefix  string
	cluster bool

	heads sync.Map // stream head key -> *knownHead, Append's guess of the current head

	mu     sync.Mutex
	hub    *hub // created by the first Subscribe
	closed bool
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.BatchAppender = (*Store)(nil)
	_ store.Tailer        = (*Store)(nil)
)

// New connects to the Redis that cfg names and checks that it answers. The error names the
// host, never the password.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("redis: url is required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	client, where, password, err := newClient(cfg.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, redact(fmt.Errorf("redis: cannot connect to %s: %w", where, err), password)
	}
	_, cluster := client.(*goredis.ClusterClient)
	return &Store{client: client, prefix: cfg.KeyPrefix, cluster: cluster}, nil
}

// newClient builds the go-redis client for rawURL. where describes the server for messages;
// password is returned only so that errors can be scrubbed of it.
func newClient(rawURL string) (client goredis.UniversalClient, where, password string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only the reason.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, "", "", fmt.Errorf("redis: invalid url: %w", err)
	}
	password, _ = u.User.Password()
	scheme, topology, _ := strings.Cut(u.Scheme, "+")
	plain := *u
	plain.Scheme = scheme
	invalid := func(err error) (goredis.UniversalClient, string, string, error) {
		return nil, "", "", redact(fmt.Errorf("redis: invalid url for %s: %w", u.Host, err), password)
	}
	switch topology {
	case "":
		opts, err := goredis.ParseURL(plain.String())
		if err != nil {
			return invalid(err)
		}
		opts.ContextTimeoutEnabled = true
		return goredis.NewClient(opts), opts.Addr, password, nil
	case "sentinel":
		opts, err := goredis.ParseFailoverURL(plain.String())
		if err != nil {
			return invalid(err)
		}
		if opts.MasterName == "" {
			return invalid(errors.New("master_name is required with redis+sentinel"))
		}
		// The URL's user and password are the Sentinels'; the data nodes usually share them.
		if opts.Password == "" {
			opts.Username, opts.Password = opts.SentinelUsername, opts.SentinelPassword
		}
		opts.ContextTimeoutEnabled = true
		where := fmt.Sprintf("master %q via sentinel %s", opts.MasterName, strings.Join(opts.SentinelAddrs, ","))
		return goredis.NewFailoverClient(opts), where, password, nil
	case "cluster":
		opts, err := goredis.ParseClusterURL(plain.String())
		if err != nil {
			return invalid(err)
		}
		opts.ContextTimeoutEnabled = true
		return goredis.NewClusterClient(opts), "cluster " + strings.Join(opts.Addrs, ","), password, nil
	default:
		return invalid(fmt.Errorf("unknown scheme %q (want redis, rediss, unix, redis+sentinel or redis+cluster)", u.Scheme))
	}
}

// redact removes password from err's text, should a dependency ever repeat it.
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

func (s *Store) key(k string) string { return s.prefix + k }

// streamKeys returns the keys of a stream's entries and of its head. In a Cluster both carry
// the same hash tag, so that they live in one slot and one transaction may write both.
func (s *Store) streamKeys(name string) (entries, head string) {
	base := s.prefix + name
	if s.cluster {
		base = s.prefix + "{" + name + "}"
	}
	return base, base + ":head"
}

// expiration turns a store ttl into go-redis's: 0 for none, else at least a millisecond,
// rounded up so that a key never expires earlier than asked.
func expiration(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// fail wraps a Redis error with the operation and key (never a value). When the context has
// ended, the error also matches context.Canceled or context.DeadlineExceeded, even if go-redis
// reported it as a network timeout.
func fail(ctx context.Context, op, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("redis %s %q: %w: %w", op, key, ctxErr, err)
	}
	return fmt.Errorf("redis %s %q: %w", op, key, err)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fail(ctx, "get", key, err)
	}
	return v, nil
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.key(key), value, expiration(ttl)).Err(); err != nil {
		return fail(ctx, "set", key, err)
	}
	return nil
}

// SetNX implements store.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.key(key), value, expiration(ttl)).Result()
	if err != nil {
		return false, fail(ctx, "setnx", key, err)
	}
	return ok, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.key(key)).Err(); err != nil {
		return fail(ctx, "delete", key, err)
	}
	return nil
}

// Update implements store.Store as a read, then a compare-and-set: GET, fn, then a script that
// writes fn's value only if the key still holds what fn saw (compared by SHA-1 inside Redis, so
// the old value is not sent back) and otherwise replies with the current value, on which fn
// runs again without another read. That is two round trips when nobody else writes the key in
// between, where WATCH, GET and MULTI/EXEC took three. fn may run several times.
func (s *Store) Update(ctx context.Context, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	k := s.key(key)
	old, err := s.client.Get(ctx, k).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		old = nil
	case err != nil:
		return fail(ctx, "update", key, err)
	case old == nil:
		old = []byte{} // present but empty: not absent
	}
	for attempt := range maxTxAttempts {
		value, ttl, err := fn(old)
		if err != nil {
			return err
		}
		expect := "" // absent
		if old != nil {
			sum := sha1.Sum(old) // a change detector, not a security boundary
			expect = hex.EncodeToString(sum[:])
		}
		set, ms := "0", int64(0)
		if value == nil {
			value = []byte{}
		} else {
			set, ms = "1", expiration(ttl).Milliseconds()
		}
		res, err := updateScript.Run(ctx, s.client, []string{k}, expect, set, value, ms).Slice()
		if err != nil {
			return fail(ctx, "update", key, err)
		}
		if len(res) > 0 && res[0] == int64(1) {
			return nil
		}
		// Another writer changed the key: run fn again on what it holds now.
		old = nil
		if len(res) == 2 {
			cur, _ := res[1].(string)
			old = []byte(cur)
		}
		if attempt > 0 { // repeated collisions: spread the writers out a little
			backoff := min(maxTxBackoff, time.Duration(attempt)*time.Millisecond/2)
			t := time.NewTimer(rand.N(backoff) + 1)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return store.ErrConflict
}

// updateScript is Update's compare-and-set. KEYS: the key. ARGV: the SHA-1 hex of the value fn
// saw ("" = absent), "1" to set or "0" to delete, the value, its expiry in milliseconds (0 =
// none). Replies {1} when written, else {0} when the key is now absent or {0, current value}.
var updateScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then
  if ARGV[1] ~= '' then return {0} end
elseif ARGV[1] == '' or redis.sha1hex(cur) ~= ARGV[1] then
  return {0, cur}
end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return {1}
`)

// IncrBy implements store.Store. SET NX with the ttl followed by INCRBY, in one MULTI/EXEC,
// creates the counter with its expiry and leaves an existing counter's expiry alone.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	k := s.key(key)
	var incr *goredis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, k, 0, expiration(ttl))
		incr = p.IncrBy(ctx, k, delta)
		return nil
	})
	if err != nil {
		return 0, fail(ctx, "incrby", key, err)
	}
	return incr.Val(), nil
}

// SAdd implements store.Store.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return ctx.Err()
	}
	if err := s.client.SAdd(ctx, s.key(key), anys(members)...).Err(); err != nil {
		return fail(ctx, "sadd", key, err)
	}
	return nil
}

// SRem implements store.Store.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return ctx.Err()
	}
	if err := s.client.SRem(ctx, s.key(key), anys(members)...).Err(); err != nil {
		return fail(ctx, "srem", key, err)
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// SMembers implements store.Store.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	m, err := s.client.SMembers(ctx, s.key(key)).Result()
	if err != nil {
		return nil, fail(ctx, "smembers", key, err)
	}
	return m, nil
}

// Publish implements store.Store.
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := s.client.Publish(ctx, s.key(channel), msg).Err(); err != nil {
		return fail(ctx, "publish", channel, err)
	}
	return nil
}

// Subscribe implements store.Store. It returns once Redis has confirmed the subscription, so
// that a message published (by any replica) after it returns is delivered.
func (s *Store) Subscribe(ctx context.Context, channel string) (store.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, "subscribe", channel, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("redis subscribe %q: %w", channel, errClosed)
	}
	if s.hub == nil {
		s.hub = newHub(s.client)
	}
	h := s.hub
	s.mu.Unlock()
	sub, err := h.subscribe(ctx, s.key(channel))
	if err != nil {
		return nil, fail(ctx, "subscribe", channel, err)
	}
	return sub, nil
}

// Append implements store.Store as a batch of one (AppendBatch). It is one round trip in the
// usual case: a script appends the entry and moves the head only if the head is still the one
// fn chained onto (the last head this Store wrote or saw); if another writer moved it, the
// script returns the current head and fn runs again on it. fn may therefore run several times.
func (s *Store) Append(ctx context.Context, stream string, maxLen int64, fn func(head []byte) ([]byte, []byte, error)) (string, error) {
	return store.AppendOne(ctx, s, stream, maxLen, fn)
}

// AppendBatch implements store.BatchAppender: one script call appends every entry
// (one XADD each) and moves the head once, only if the head is still the one fn chained onto.
func (s *Store) AppendBatch(ctx context.Context, stream string, maxLen int64, fn func(head []byte) ([][]byte, []byte, error)) ([]string, error) {
	entriesKey, headKey := s.streamKeys(stream)
	head, known := s.lastHead(headKey)
	if !known {
		v, err := s.client.Get(ctx, headKey).Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			head = nil
		case err != nil:
			return nil, fail(ctx, "append", stream, err)
		default:
			head = v
		}
	}
	var args []any
	for range maxTxAttempts {
		entries, newHead, err := fn(clone(head))
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, nil
		}
		expectAbsent, deleteHead := "0", "0"
		if head == nil {
			expectAbsent = "1"
		}
		if newHead == nil {
			deleteHead = "1"
		}
		args = append(args[:0], head, newHead, max(maxLen, 0), expectAbsent, deleteHead, entryField)
		for _, e := range entries {
			args = append(args, e)
		}
		res, err := appendBatchScript.Run(ctx, s.client, []string{entriesKey, headKey}, args...).Slice()
		if err != nil {
			s.forgetHead(headKey)
			return nil, fail(ctx, "append", stream, err)
		}
		if len(res) == 1+len(entries) && res[0] == int64(1) {
			s.rememberHead(headKey, newHead)
			ids := make([]string, len(entries))
			for i := range ids {
				ids[i], _ = res[1+i].(string)
			}
			return ids, nil
		}
		if len(res) != 3 || res[0] != int64(0) {
			s.forgetHead(headKey)
			return nil, fail(ctx, "append", stream, fmt.Errorf("unexpected script reply %v", res))
		}
		// Another writer moved the head: chain onto the current one.
		if absent, _ := res[2].(int64); absent == 1 {
			head = nil
		} else {
			h, _ := res[1].(string)
			head = []byte(h)
		}
	}
	s.forgetHead(headKey)
	return nil, store.ErrConflict
}

// appendBatchScript is AppendBatch's compare-and-append. KEYS: entries, head. ARGV: expected
// head, new head, max length (0 = no trim), expected absent ("1"), delete head ("1"), field,
// then the entries. Replies {1, ID...} when appended, else {0, current head, 1 if absent}.
var appendBatchScript = goredis.NewScript(`
local head = redis.call('GET', KEYS[2])
if head == false then
  if ARGV[4] ~= '1' then return {0, '', 1} end
elseif ARGV[4] == '1' or head ~= ARGV[1] then
  return {0, head, 0}
end
local reply = {1}
local trim = tonumber(ARGV[3]) > 0
for i = 7, #ARGV do
  if trim then
    reply[#reply + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', ARGV[6], ARGV[i])
  else
    reply[#reply + 1] = redis.call('XADD', KEYS[1], '*', ARGV[6], ARGV[i])
  end
end
if ARGV[5] == '1' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[2]) end
return reply
`)

// lastHead is the head this Store last wrote or saw for a stream: Append's guess, checked by
// the script, so a stale guess costs one more round trip and never a wrong chain.
func (s *Store) lastHead(headKey string) ([]byte, bool) {
	v, ok := s.heads.Load(headKey)
	if !ok {
		return nil, false
	}
	return v.(*knownHead).value, true
}

type knownHead struct{ value []byte }

func (s *Store) rememberHead(headKey string, head []byte) {
	s.heads.Store(headKey, &knownHead{value: clone(head)})
}

func (s *Store) forgetHead(headKey string) { s.heads.Delete(headKey) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// entryField is the stream field that holds an entry's value.
const entryField = "v"

// Range implements store.Store with XRANGE, starting exclusively after afterID.
func (s *Store) Range(ctx context.Context, stream, afterID string, count int64) ([]store.Entry, error) {
	entriesKey, _ := s.streamKeys(stream)
	start := "-"
	if afterID != "" && afterID != "0" {
		start = "(" + afterID
	}
	var cmd *goredis.XMessageSliceCmd
	if count > 0 {
		cmd = s.client.XRangeN(ctx, entriesKey, start, "+", count)
	} else {
		cmd = s.client.XRange(ctx, entriesKey, start, "+")
	}
	msgs, err := cmd.Result()
	if err != nil {
		return nil, fail(ctx, "range", stream, err)
	}
	return streamEntries("range", stream, msgs)
}

func streamEntries(op, stream string, msgs []goredis.XMessage) ([]store.Entry, error) {
	out := make([]store.Entry, 0, len(msgs))
	for _, m := range msgs {
		v, ok := m.Values[entryField].(string)
		if !ok {
			return nil, fmt.Errorf("redis %s %q: entry %s has no field %q", op, stream, m.ID, entryField)
		}
		out = append(out, store.Entry{ID: m.ID, Value: []byte(v)})
	}
	return out, nil
}

// Tail implements store.Tailer with XREAD BLOCK, which Redis answers as soon as any replica
// appends. "$" is first resolved to the stream's last entry ID (XREVRANGE), so that the cursor
// handed back is always a real one and nothing appended between two calls is missed. A
// blocked XREAD holds one pooled connection; block bounds how long ctx's end can go unseen.
func (s *Store) Tail(ctx context.Context, stream, afterID string, count int64, block time.Duration) ([]store.Entry, string, error) {
	entriesKey, _ := s.streamKeys(stream)
	switch afterID {
	case "$":
		last, err := s.client.XRevRangeN(ctx, entriesKey, "+", "-", 1).Result()
		if err != nil {
			return nil, "", fail(ctx, "tail", stream, err)
		}
		afterID = "0-0"
		if len(last) == 1 {
			afterID = last[0].ID
		}
	case "", "0":
		afterID = "0-0"
	}
	args := &goredis.XReadArgs{Streams: []string{entriesKey, afterID}, Count: count, Block: -1}
	if block > 0 {
		args.Block = max(block, time.Millisecond) // BLOCK 0 would wait for ever
	}
	res, err := s.client.XRead(ctx, args).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, afterID, nil
	}
	if err != nil {
		return nil, "", fail(ctx, "tail", stream, err)
	}
	if len(res) == 0 || len(res[0].Messages) == 0 {
		return nil, afterID, nil
	}
	out, err := streamEntries("tail", stream, res[0].Messages)
	if err != nil {
		return nil, "", err
	}
	return out, out[len(out)-1].ID, nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context, stream string) ([]byte, error) {
	_, headKey := s.streamKeys(stream)
	v, err := s.client.Get(ctx, headKey).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(ctx, "head", stream, err)
	}
	return v, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fail(ctx, "ping", "", err)
	}
	return nil
}

// Close implements store.Store: it ends every subscription and closes the connections. A
// second Close does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	h := s.hub
	s.mu.Unlock()
	var errs []error
	if h != nil {
		errs = append(errs, h.close())
	}
	errs = append(errs, s.client.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redis close: %w", err)
	}
	return nil
}

// DeleteAll removes every key under this store's key prefix, with SCAN and UNLINK (on a Cluster,
// on every master), and returns how many it removed. It is for throwaway prefixes, such as a
// benchmark run's: never call it on the prefix of a running Airlock.
func (s *Store) DeleteAll(ctx context.Context) (int64, error) {
	pattern := globEscape(s.prefix) + "*"
	var n atomic.Int64
	del := func(ctx context.Context, c goredis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// One UNLINK per key, pipelined: on a Cluster the keys of a batch may sit in
			// different slots.
			cmds, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range batch {
					p.Unlink(ctx, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, cmd := range cmds {
				n.Add(cmd.(*goredis.IntCmd).Val())
			}
			batch = batch[:0]
			return nil
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	var err error
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return del(ctx, c) })
	} else {
		err = del(ctx, s.client)
	}
	if err != nil {
		return n.Load(), fmt.Errorf("redis: delete keys under %q: %w", s.prefix, err)
	}
	return n.Load(), nil
}

// globEscape makes s match itself literally in a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
