package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/store"
)

// One Redis pub/sub connection per Store carries every subscription, rather than one
// connection (and one goroutine) per Subscribe: a replica holds a subscription for every call
// waiting for approval, and hundreds of held calls must not mean hundreds of Redis
// connections. go-redis keeps that connection healthy (pings, reconnects and resubscribes);
// one dispatcher goroutine, owned by the Store and stopped by Close, fans messages out to the
// local subscribers of each channel.

// subscriptionBuffer bounds what a slow subscriber may queue; beyond it messages are dropped
// for that subscriber, as in store/memory (subscribers re-read state after a wake-up).
const subscriptionBuffer = 256

const (
	// subscribeTimeout bounds the wait for Redis to confirm a subscription when the caller's
	// context has no deadline.
	subscribeTimeout = 10 * time.Second
	// unsubscribeTimeout bounds the UNSUBSCRIBE sent when a channel's last subscriber leaves.
	unsubscribeTimeout = 3 * time.Second
	// closeTimeout bounds how long Close waits for the dispatcher to stop.
	closeTimeout = 5 * time.Second
)

var errClosed = errors.New("store closed")

// hub multiplexes one Store's subscriptions over one go-redis PubSub.
type hub struct {
	ps   *goredis.PubSub
	quit chan struct{} // closed by close
	done chan struct{} // closed when the dispatcher has stopped

	mu     sync.Mutex
	topics map[string]*topic // by Redis channel
	// pending holds, per channel, the topics whose SUBSCRIBE awaits Redis's confirmation, in
	// the order the commands were sent; confirmations arrive in that order.
	pending map[string][]*topic
	closed  bool
}

// topic is one subscribed Redis channel and its local subscribers.
type topic struct {
	channel string
	subs    map[*subscription]struct{}
	ready   chan struct{} // closed when Redis confirmed the SUBSCRIBE
}

func newHub(client goredis.UniversalClient) *hub {
	// No channel yet: the connection is made by the first SUBSCRIBE or by the receiver.
	ps := client.Subscribe(context.Background())
	h := &hub{
		ps:      ps,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		topics:  map[string]*topic{},
		pending: map[string][]*topic{},
	}
	go h.dispatch(ps.ChannelWithSubscriptions(goredis.WithChannelSize(subscriptionBuffer)))
	return h
}

// dispatch delivers what the PubSub receives until the PubSub is closed.
func (h *hub) dispatch(msgs <-chan any) {
	defer close(h.done)
	for m := range msgs {
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				h.confirm(m.Channel)
			}
		case *goredis.Message:
			h.deliver(m.Channel, m.Payload)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeAllLocked()
}

func (h *hub) confirm(channel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	queue := h.pending[channel]
	if len(queue) == 0 {
		return // a resubscription after a reconnect
	}
	close(queue[0].ready)
	if len(queue) == 1 {
		delete(h.pending, channel)
	} else {
		h.pending[channel] = queue[1:]
	}
}

func (h *hub) deliver(channel, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[channel]
	if t == nil {
		return
	}
	for sub := range t.subs {
		select {
		case sub.ch <- []byte(payload):
		default: // full: dropped for this subscriber
		}
	}
}

func (h *hub) subscribe(ctx context.Context, channel string) (*subscription, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeTimeout)
		defer cancel()
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	t := h.topics[channel]
	if t == nil {
		// SUBSCRIBE is sent under h.mu so that the order of pending matches the order of the
		// commands on the connection.
		if err := h.ps.Subscribe(ctx, channel); err != nil {
			// go-redis remembers the channel even when sending failed; make it forget (still
			// under h.mu, so that this UNSUBSCRIBE cannot overtake a later SUBSCRIBE).
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unsubscribeTimeout)
			_ = h.ps.Unsubscribe(uctx, channel)
			cancel()
			h.mu.Unlock()
			return nil, err
		}
		t = &topic{channel: channel, subs: map[*subscription]struct{}{}, ready: make(chan struct{})}
		h.topics[channel] = t
		h.pending[channel] = append(h.pending[channel], t)
	}
	sub := &subscription{h: h, t: t, ch: make(chan []byte, subscriptionBuffer)}
	t.subs[sub] = struct{}{}
	h.mu.Unlock()

	select {
	case <-t.ready:
		return sub, nil
	case <-ctx.Done():
		_ = sub.Close()
		return nil, fmt.Errorf("waiting for the subscription to be confirmed: %w", ctx.Err())
	case <-h.quit:
		return nil, errClosed
	}
}

// close stops the PubSub and the dispatcher; every subscription's channel is closed.
func (h *hub) close() error {
	h.mu.Lock()
	h.closed = true
	close(h.quit)
	h.mu.Unlock()
	err := h.ps.Close()
	select {
	case <-h.done:
	case <-time.After(closeTimeout):
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeAllLocked()
	return err
}

func (h *hub) closeAllLocked() {
	for _, t := range h.topics {
		for sub := range t.subs {
			sub.closeLocked()
		}
	}
	clear(h.topics)
}

// subscription is one Subscribe's view of a topic.
type subscription struct {
	h      *hub
	t      *topic
	ch     chan []byte
	closed bool // guarded by h.mu
}

var _ store.Subscription = (*subscription)(nil)

func (sub *subscription) C() <-chan []byte { return sub.ch }

// Close ends the subscription; when it was the channel's last local subscriber, the Store
// unsubscribes from the channel in Redis.
func (sub *subscription) Close() error {
	h := sub.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.closed {
		return nil
	}
	sub.closeLocked()
	t := sub.t
	if len(t.subs) > 0 || h.topics[t.channel] != t {
		return nil
	}
	delete(h.topics, t.channel)
	if h.closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
	defer cancel()
	if err := h.ps.Unsubscribe(ctx, t.channel); err != nil {
		return fmt.Errorf("redis unsubscribe: %w", err)
	}
	return nil
}

func (sub *subscription) closeLocked() {
	sub.closed = true
	delete(sub.t.subs, sub)
	close(sub.ch)
}
