package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
)

// events streams a request's changes as server-sent events: one "request" event with the
// request as the viewer sees it now, another after every change, a keepalive comment every
// KeepAlive, and the end of the stream once the request is decided (the page's script stops
// listening when it sees a final state, so the browser does not reconnect).
func (p *Pages) events(w http.ResponseWriter, r *http.Request) {
	req, ok := p.visible(w, r)
	if !ok {
		return
	}
	viewer, _ := authn.IdentityFrom(r.Context())
	ctx := r.Context()
	wake, stop, err := p.watch(ctx, req.ID)
	if err != nil {
		p.cfg.Logger.Error("watch request for live page", "request_id", req.ID, "err", err)
		http.Error(w, "live updates are unavailable right now", http.StatusServiceUnavailable)
		return
	}
	defer stop()
	// Read again now that the watch is in place, so that no change slips in between.
	if next, err := p.cfg.Workflow.Get(ctx, req.ID); err == nil {
		req = next
	}

	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "retry: 5000\n\n")
	send := func(req *approval.Request) bool {
		b, err := json.Marshal(newRequestView(req, viewer, p.cfg.Now()))
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: request\ndata: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send(req) {
		return
	}
	keepalive := time.NewTicker(p.cfg.KeepAlive)
	defer keepalive.Stop()
	expiry := time.NewTimer(max(req.ExpiresAt.Sub(p.cfg.Now()), 0) + time.Millisecond)
	defer expiry.Stop()
	for req.State == approval.StatePending {
		select {
		case <-ctx.Done():
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			// A safety re-read, in case a change message was lost on its way.
		case <-wake:
		case <-expiry.C:
		}
		next, err := p.cfg.Workflow.Get(ctx, req.ID)
		if err != nil {
			if ctx.Err() == nil {
				p.cfg.Logger.Warn("re-read request for live page", "request_id", req.ID, "err", err)
			}
			continue
		}
		if changed(req, next) && !send(next) {
			return
		}
		req = next
	}
}

// watch returns wake-ups for the request's changes: from the workflow's change feed when it
// has one, else from Workflow.Wait in a loop (which reports decisions at once and otherwise
// times out, so that a partial approval shows within a wait period).
func (p *Pages) watch(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	if cs, ok := p.cfg.Workflow.(ChangeSource); ok {
		return cs.Changes(ctx, id)
	}
	ctx, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			req, err := p.cfg.Workflow.Wait(ctx, id, p.cfg.KeepAlive)
			select {
			case wake <- struct{}{}:
			default:
			}
			if err != nil || req == nil || req.State != approval.StatePending {
				return
			}
		}
	}()
	return wake, func() { cancel(); <-done }, nil
}

// changed reports whether anything the page shows differs.
func changed(a, b *approval.Request) bool {
	return a.State != b.State || len(a.Approvals) != len(b.Approvals) || !a.DecidedAt.Equal(b.DecidedAt) ||
		a.Comment != b.Comment || (a.DeniedBy == nil) != (b.DeniedBy == nil)
}
