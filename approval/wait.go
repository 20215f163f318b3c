package approval

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

var errClosed = errors.New("approval workflow closed")

// Wait blocks until the request is decided (approved, denied, expired), maxWait passes (<= 0:
// the configured hold.wait), or ctx is done, and returns the request as it then stands: still
// pending after a timeout, with ctx.Err() when ctx ended. Waking up is by the store's pub/sub,
// so an approval on any replica releases the call at once; the request is re-read from the
// store after every wake-up. Should a wake-up message be lost, the process's sweep (every
// Recheck) wakes the call once its request has left the pending set. An approval does not
// spend the grant: the released call does, by UseGrant, and that counts as one of its uses.
func (w *Workflow) Wait(ctx context.Context, id string, maxWait time.Duration) (*Request, error) {
	if maxWait <= 0 {
		maxWait = w.cfg.Wait
	}
	wake, release, err := w.addWaiter(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	// Registered before the first read, so no change can slip between the two.
	r, err := w.Get(ctx, id)
	if err != nil || r.State != StatePending {
		return r, err
	}
	deadline := time.NewTimer(maxWait)
	defer deadline.Stop()
	// Expiry needs no message: the waiter notices it when the request's time is up.
	expiry := time.NewTimer(max(r.ExpiresAt.Sub(w.now()), 0) + time.Millisecond)
	defer expiry.Stop()
	for {
		select {
		case <-wake:
		case <-expiry.C:
		case <-deadline.C:
			return r, nil
		case <-w.stop:
			return r, nil
		case <-ctx.Done():
			return r, ctx.Err()
		}
		next, err := w.Get(ctx, id)
		if err != nil {
			return r, err
		}
		r = next
		if r.State != StatePending {
			return r, nil
		}
	}
}

// jitteredRecheck spreads the sweeps of several replicas over time (±25%).
func (w *Workflow) jitteredRecheck() time.Duration {
	d := w.cfg.Recheck
	return d - d/4 + rand.N(d/2+1)
}

// addWaiter registers a wake-up channel for id, subscribing to the store on first use.
func (w *Workflow) addWaiter(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, errClosed
	}
	if !w.subscribed {
		// The subscription outlives this caller: it serves every later waiter of the process.
		sub, err := w.st.Subscribe(context.WithoutCancel(ctx), Channel)
		if err != nil {
			return nil, nil, err
		}
		w.subscribed = true
		w.wg.Add(2)
		go w.demultiplex(sub)
		go w.sweep()
	}
	ch := make(chan struct{}, 1)
	set := w.waiters[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.waiters[id] = set
	}
	set[ch] = struct{}{}
	release := func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(set, ch)
		if len(set) == 0 {
			delete(w.waiters, id)
		}
	}
	return ch, release, nil
}

// subscription is the part of store.Subscription the demultiplexer uses.
type subscription interface {
	C() <-chan []byte
	Close() error
}

// demultiplex is the process's one reader of Channel: it wakes the local waiters of each
// published request ID. When the subscription ends (store restart, network), it wakes every
// waiter to re-read and subscribes again with backoff, until Close.
func (w *Workflow) demultiplex(sub subscription) {
	defer w.wg.Done()
	for {
		w.dispatch(sub)
		_ = sub.Close()
		w.wakeAll()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			select {
			case <-w.stop:
				return
			case <-time.After(backoff):
			}
			s, err := w.st.Subscribe(context.Background(), Channel)
			if err == nil {
				sub = s
				break
			}
			w.log.Warn("resubscribe to approval events", "error", err)
		}
		// Messages published while unsubscribed are lost: everyone re-reads.
		w.wakeAll()
	}
}

// dispatch delivers messages until the subscription ends or the workflow closes.
func (w *Workflow) dispatch(sub subscription) {
	for {
		select {
		case <-w.stop:
			return
		case msg, ok := <-sub.C():
			if !ok {
				return
			}
			w.wake(string(msg))
		}
	}
}

func (w *Workflow) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wakeEach(w.waiters[id])
}

func (w *Workflow) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.waiters {
		wakeEach(set)
	}
}

// wakeEach wakes the waiters of one request; call it with w.mu held.
func wakeEach(set map[chan struct{}]struct{}) {
	for ch := range set {
		select {
		case ch <- struct{}{}:
		default: // already has a wake-up pending
		}
	}
}

// sweep is the safety net under pub/sub, in case a wake-up message was lost: every Recheck
// (jittered) it reads the pending set once and wakes the local waiters whose request has left
// it (approved, denied or expired), so that they re-read it. One store read per interval for
// the whole process, however many calls wait: a re-read per waiting call and interval was, with
// 10,000 held calls, a thousand store reads a second competing with the releases.
func (w *Workflow) sweep() {
	defer w.wg.Done()
	t := time.NewTimer(w.jitteredRecheck())
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.wakeDecided()
		t.Reset(w.jitteredRecheck())
	}
}

// wakeDecided wakes the local waiters of requests that are no longer in the pending set. A
// decided request leaves the set when it is decided (unindex), or at the latest when the
// janitor (Run) finds it decided. When the set cannot be read, nobody is woken: the waiters
// keep waiting and the next sweep tries again.
func (w *Workflow) wakeDecided() {
	w.mu.Lock()
	idle := len(w.waiters) == 0
	w.mu.Unlock()
	if idle {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Recheck)
	ids, err := w.st.SMembers(ctx, keyPending)
	cancel()
	if err != nil {
		w.log.Warn("sweep waiting calls: read pending requests", "error", err)
		return
	}
	pending := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		pending[id] = struct{}{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, set := range w.waiters {
		if _, ok := pending[id]; !ok {
			wakeEach(set)
		}
	}
}
