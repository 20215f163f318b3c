package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
)

// Defaults of LogConfig.
const (
	DefaultStream       = "airlock:audit"
	DefaultStreamMaxLen = 1_000_000
	// memoryStreamMaxLen is the default for the in-memory store, which holds the stream in
	// the process (about 100 MB at 1 KB an event); the file is the durable record there.
	memoryStreamMaxLen  = 100_000
	DefaultFileMaxBytes = 100 << 20
	defaultAsyncBuffer  = 8192
	defaultCloseTimeout = 5 * time.Second
	liveBuffer          = 256
	// tailBatch bounds the entries one read of the stream for live subscribers returns;
	// tailBlock is how long one read waits for the next entry (it returns as soon as one is
	// appended), which bounds how long the tailer can go without noticing it should stop;
	// tailRetry is the pause after a failed read.
	tailBatch = 512
	tailBlock = time.Second
	tailRetry = time.Second
	// maxGroup bounds the events one group commit appends.
	maxGroup = 256
	// groupCommitTimeout bounds one group commit's store append (between half of it and all
	// of it: see leasedContext). It does not follow a caller's context, since the batch holds
	// other callers' events too.
	groupCommitTimeout = 30 * time.Second
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: log closed")

// LogConfig configures a Log.
type LogConfig struct {
	// Store holds the audit stream, the ordering authority of the chain (required). With Redis,
	// every replica appends to the same stream and the chain is one global chain.
	Store store.Store
	// Stream is the stream's key (default "airlock:audit").
	Stream string
	// StreamMaxLen trims the stream to about this many entries (default 1,000,000, or 100,000
	// with the in-memory store; negative: never trim). Trimming drops the oldest events from the store only; the chain of what is
	// left still verifies (it starts at a non-genesis prev_hash).
	StreamMaxLen int64

	// File is the JSONL file of this replica ("" = none). It is a primary sink, like the stream.
	File string
	// FileMaxBytes rotates the file when the next line would pass this size (default 100 MiB).
	FileMaxBytes int64
	// FileKeep is how many rotated files to keep (0 = all; audit files are evidence, so deleting
	// them is an explicit choice).
	FileKeep int
	// FileSync calls fsync after every event. Without it an event is in the kernel's page cache
	// when Record returns, which survives a crash or kill -9 of Airlock but not a power loss.
	FileSync bool

	// Stdout receives every event as a JSON line, asynchronously (nil = off).
	Stdout io.Writer
	// Webhook ships batches of events to a SIEM, asynchronously (URL "" = off).
	Webhook WebhookConfig

	// Replica names this writer in every event (default: the host name).
	Replica string
	// AsyncBuffer bounds the events queued for the secondary sinks (default 8192); beyond it
	// they are dropped for those sinks (counted), never blocking Record.
	AsyncBuffer int
	// CloseTimeout bounds how long Close waits for the secondary sinks to drain (default 5s).
	CloseTimeout time.Duration

	Now    func() time.Time
	Logger *slog.Logger
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *LogConfig) CheckAndSetDefaults() error {
	if c.Store == nil {
		return errors.New("audit: LogConfig.Store is required")
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = DefaultStreamMaxLen
		if _, inMemory := c.Store.(*memory.Store); inMemory {
			c.StreamMaxLen = memoryStreamMaxLen
		}
	}
	if c.FileMaxBytes <= 0 {
		c.FileMaxBytes = DefaultFileMaxBytes
	}
	if c.FileKeep < 0 {
		return errors.New("audit: LogConfig.FileKeep must not be negative")
	}
	if c.Replica == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "airlock"
		}
		c.Replica = host
	}
	if c.AsyncBuffer <= 0 {
		c.AsyncBuffer = defaultAsyncBuffer
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Webhook.URL != "" {
		if err := c.Webhook.CheckAndSetDefaults(); err != nil {
			return err
		}
	}
	return nil
}

// Log records audit events: it chains them, writes the primary sinks (store stream, file)
// before Record returns, and feeds the secondary sinks (stdout, webhook, live subscribers)
// asynchronously. Safe for concurrent use.
type Log struct {
	cfg    LogConfig
	logger *slog.Logger

	// mu serializes the primary path, so this replica's events reach its file in chain order.
	mu      sync.Mutex
	closed  bool
	ids     *idGenerator
	idBuf   []byte // a group's new IDs (under mu)
	sha     hash.Hash
	sum     [hashHexLen]byte
	raw     [sha256.Size]byte
	buf     []byte
	cur     *Event // the event being chained, for chainFn
	last    string // hash of the last event this Log appended
	chainFn func(head []byte) ([]byte, []byte, error)
	file    *fileSink
	seed    []byte // prev_hash when the store stream is empty: the file's last hash, or Genesis

	// Group commit, when the store is a store.BatchAppender: Record queues its event; one of the
	// waiting callers at a time (the leader) takes what is queued, appends it in one AppendBatch
	// and writes the file, then hands leadership to the next queued caller.
	batcher store.BatchAppender
	qmu     sync.Mutex
	queue   []*waiter // guarded by qmu
	leading bool      // guarded by qmu: a leader is running; true whenever queue is not empty
	group   []*waiter // the batch being chained, for groupFn (under mu)
	lines   []byte    // the batch's sealed lines, each with its newline (under mu)
	starts  []int     // where each line starts in lines (under mu)
	entries [][]byte  // the lines without their newline, for AppendBatch (under mu)
	prevBuf [hashHexLen]byte
	groupFn func(head []byte) ([][]byte, []byte, error)
	// commitCtx bounds each group commit's store append (groupCommitTimeout), under mu. It does
	// not follow a caller's context, since the group holds other callers' events too.
	commitCtx leasedContext

	async     chan asyncItem // unbuffered when no secondary sink can ever need it (see NewLog)
	asyncDone chan struct{}

	subsMu     sync.RWMutex
	subs       map[*subscriber]struct{}
	nsubs      atomic.Int32
	liveBuffer int // each subscriber's channel buffer: liveBuffer, more in tests that must not drop
	// Live subscribers read the store stream (every replica's events, in chain order) while
	// there are any: tailer is the store's, tailing is true while the tailing goroutine runs.
	tailer  store.Tailer
	tailMu  sync.Mutex
	tailing bool // guarded by tailMu

	webhook *webhookSink
	stats   stats
	metrics *metrics
	bg      context.Context
	stopBG  context.CancelFunc
}

type asyncItem struct {
	ev   Event
	line []byte // the sealed line with its newline; queued by the webhook, so never modified
}

type stats struct {
	recorded       atomic.Uint64
	storeFailures  atomic.Uint64
	fileFailures   atomic.Uint64
	asyncDropped   atomic.Uint64
	liveDropped    atomic.Uint64
	stdoutFailures atomic.Uint64
	tailFailures   atomic.Uint64

	mu               sync.Mutex
	lastPrimaryErr   string
	lastPrimaryErrAt time.Time
}

// NewLog opens the sinks. The file, when configured, is created (directory 0700, file 0600)
// and its chain resumes from its last event.
func NewLog(ctx context.Context, cfg LogConfig) (*Log, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	l := &Log{
		cfg:        cfg,
		logger:     cfg.Logger,
		ids:        newIDGenerator(),
		sha:        sha256.New(),
		buf:        make([]byte, 0, 1024),
		seed:       []byte(Genesis),
		asyncDone:  make(chan struct{}),
		subs:       map[*subscriber]struct{}{},
		liveBuffer: liveBuffer,
	}
	l.tailer, _ = cfg.Store.(store.Tailer)
	l.chainFn = l.chain
	l.groupFn = l.chainGroup
	if ba, ok := cfg.Store.(store.BatchAppender); ok {
		l.batcher = ba
	}
	l.bg, l.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	l.commitCtx = leasedContext{parent: l.bg, timeout: groupCommitTimeout}
	if cfg.File != "" {
		f, err := openFileSink(cfg.File, cfg.FileMaxBytes, cfg.FileKeep, cfg.FileSync, cfg.Logger)
		if err != nil {
			l.stopBG()
			return nil, err
		}
		l.file = f
		l.seed = []byte(f.last)
	}
	if cfg.Webhook.URL != "" {
		l.webhook = newWebhookSink(l.bg, cfg.Webhook, cfg.Now, cfg.Logger)
	}
	// The queue of the secondary sinks is allocated only when one of them may need it (at
	// about 550 bytes an item, the default 8192 is 4.4 MB).
	l.async = make(chan asyncItem)
	if cfg.Stdout != nil || l.webhook != nil || l.tailer == nil {
		l.async = make(chan asyncItem, cfg.AsyncBuffer)
	}
	l.metrics = newMetrics(l)
	go l.dispatch()
	return l, nil
}

// Record completes e (v, id, time in UTC, replica, prev_hash, hash; Record writes these fields
// of e) and writes it to the primary sinks: the store stream, then the file. It returns only
// when both have it; an error means the event may not be recorded and the caller must fail
// closed (refuse the call). The secondary sinks get it afterwards without blocking. e's slices
// (groups, approvers) are shared with the secondary sinks: do not modify them afterwards.
func (l *Log) Record(ctx context.Context, e *Event) error {
	start := time.Now()
	e.V = SchemaVersion
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	e.Time = e.Time.UTC()
	if e.Replica == "" {
		e.Replica = l.cfg.Replica
	}
	var err error
	if l.batcher != nil {
		err = l.recordGrouped(ctx, e)
	} else {
		err = l.recordOne(ctx, e)
	}
	if err != nil {
		return err
	}
	l.stats.recorded.Add(1)
	l.metrics.recordSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// recordOne writes one event to the primary sinks with one store Append.
func (l *Log) recordOne(ctx context.Context, e *Event) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if e.ID == "" {
		e.ID = l.ids.next(e.Time)
	}
	e.ReplicaPrevHash = ""
	if l.file != nil {
		e.ReplicaPrevHash = l.file.last
	}
	l.cur = e
	_, err := l.cfg.Store.Append(ctx, l.cfg.Stream, max(l.cfg.StreamMaxLen, 0), l.chainFn)
	l.cur = nil
	if err != nil {
		l.mu.Unlock()
		l.stats.storeFailures.Add(1)
		err = fmt.Errorf("audit: append event to store stream %s: %w", l.cfg.Stream, err)
		l.primaryFailed(err)
		return err
	}
	e.Hash = string(l.sum[:])
	l.last = e.Hash
	l.buf = append(l.buf, '\n')
	if l.file != nil {
		if err := l.file.write(l.buf, e.Hash); err != nil {
			l.mu.Unlock()
			l.stats.fileFailures.Add(1)
			err = fmt.Errorf("audit: write event to file: %w", err)
			l.primaryFailed(err)
			return err
		}
	}
	if l.wantAsync() {
		// Sent under mu so that Close cannot close the channel in between; never blocks.
		select {
		case l.async <- asyncItem{ev: *e, line: slices.Clone(l.buf)}:
		default:
			l.stats.asyncDropped.Add(1)
		}
	}
	l.mu.Unlock()
	return nil
}

// chain is the store.Append callback that links l.cur to the stream's head. It may run more
// than once (optimistic retries on Redis), so it only computes. It runs under l.mu.
func (l *Log) chain(head []byte) ([]byte, []byte, error) {
	e := l.cur
	prev := head
	if len(prev) == 0 {
		prev = l.seed
	}
	if !isHash(prev) {
		return nil, nil, fmt.Errorf("stream head is not a hash: %.80q", prev)
	}
	switch {
	case string(prev) == l.last: // the usual case with one writer: no allocation
		e.PrevHash = l.last
	case string(prev) != e.PrevHash:
		e.PrevHash = string(prev)
	}
	e.Hash = ""
	l.buf = appendEventJSON(l.buf[:0], e)
	chainHashScratch(l.sha, &l.sum, &l.raw, prev, l.buf)
	l.buf = sealLine(l.buf, &l.sum)
	return l.buf, l.sum[:], nil
}

// wantAsync reports whether the event just recorded goes to the secondary sinks' queue.
func (l *Log) wantAsync() bool {
	return l.cfg.Stdout != nil || l.webhook != nil || (l.tailer == nil && l.nsubs.Load() > 0)
}

func (l *Log) primaryFailed(err error) {
	l.stats.mu.Lock()
	l.stats.lastPrimaryErr = err.Error()
	l.stats.lastPrimaryErrAt = l.cfg.Now()
	l.stats.mu.Unlock()
	l.logger.Error("audit: primary sink failed; the call is refused", "error", err)
}

// dispatch feeds the secondary sinks in order, one goroutine per Log.
func (l *Log) dispatch() {
	defer close(l.asyncDone)
	for it := range l.async {
		l.deliver(&it)
	}
}

// deliver hands one event to stdout, the webhook and the local subscribers.
func (l *Log) deliver(it *asyncItem) {
	if w := l.cfg.Stdout; w != nil {
		// one Write per line so that lines from other writers do not interleave inside it
		if _, err := w.Write(it.line); err != nil {
			l.stats.stdoutFailures.Add(1)
		}
	}
	if l.webhook != nil {
		l.webhook.enqueue(it.line[:len(it.line)-1])
	}
	if l.tailer == nil { // else live subscribers read the stream
		l.fanOut(&it.ev)
	}
}

// Since returns up to limit events of the store stream after the event afterID ("" = from the
// oldest kept), oldest first. afterID may also be a stream entry ID. It returns ErrUnknownID
// when afterID is no longer (or never was) on the stream.
func (l *Log) Since(ctx context.Context, afterID string, limit int) ([]Event, error) {
	return since(ctx, l.cfg.Store, l.cfg.Stream, afterID, limit)
}

// Close stops accepting events, drains the secondary sinks (bounded by CloseTimeout) and closes
// the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.async)
	l.mu.Unlock()

	timer := time.NewTimer(l.cfg.CloseTimeout)
	defer timer.Stop()
	select {
	case <-l.asyncDone:
	case <-timer.C:
		l.logger.Warn("audit: secondary sinks did not drain before close")
	}
	if l.webhook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CloseTimeout)
		l.webhook.close(ctx)
		cancel()
	}
	l.stopBG() // ends the tailer, if any, at its next read (it delivers nothing after this)
	l.closeSubscribers()
	var err error
	l.mu.Lock()
	if l.file != nil {
		err = l.file.close()
	}
	l.mu.Unlock()
	return err
}

// Collectors returns the Prometheus collectors of this Log's sinks, for the server to register.
func (l *Log) Collectors() []prometheus.Collector { return l.metrics.collectors() }

// leasedContext hands out a context with a deadline, for operations that must not hang (a
// store append or publish), without the four allocations of a context.WithTimeout each time:
// the context is reused for as long as at least half of timeout is left of it, so each
// operation is bounded by between timeout/2 and timeout. The deadline is a real one, which the
// Redis client also puts on its connection. Not safe for concurrent use.
type leasedContext struct {
	parent   context.Context
	timeout  time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

func (c *leasedContext) get() context.Context {
	if c.ctx == nil || time.Until(c.deadline) < c.timeout/2 || c.ctx.Err() != nil {
		if c.cancel != nil {
			c.cancel()
		}
		c.ctx, c.cancel = context.WithTimeout(c.parent, c.timeout)
		c.deadline, _ = c.ctx.Deadline()
	}
	return c.ctx
}
