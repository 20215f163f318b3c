package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Group commit: with a store that implements store.BatchAppender, events that arrive while an
// append is in flight are chained in order and appended together (one store round trip, one
// file write), instead of one round trip each under the Log's lock. The chain format is the
// same: each event's prev_hash is the event before it on the stream, and its replica_prev_hash
// the event before it in this replica's file.

// waiter is one Record call waiting for its event's group commit.
type waiter struct {
	e     *Event
	err   error         // the outcome, set before ready is signalled
	lead  bool          // guarded by Log.qmu: this caller leads the next group commit
	taken bool          // guarded by Log.qmu: the event is in a group being committed
	ready chan struct{} // signalled once: the outcome is set, or lead became true
	group []*waiter     // the group this caller leads; kept with the pooled waiter for reuse
}

var waiters = sync.Pool{New: func() any { return &waiter{ready: make(chan struct{}, 1)} }}

// recordGrouped queues e and returns when the group commit that holds it has written it to the
// primary sinks (nil) or failed (the error). If ctx ends while e is still queued, e is taken
// out of the queue, is not recorded, and the error says so; once e is in a group being
// committed, Record waits for that commit's outcome (bounded by groupCommitTimeout), so that
// what it reports is what happened.
func (l *Log) recordGrouped(ctx context.Context, e *Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: event not recorded: %w", err)
	}
	w := waiters.Get().(*waiter)
	w.e, w.err, w.lead, w.taken = e, nil, false, false
	defer func() {
		w.e, w.err = nil, nil
		waiters.Put(w)
	}()

	l.qmu.Lock()
	l.queue = append(l.queue, w)
	if !l.leading {
		l.leading = true
		w.lead = true
	}
	lead := w.lead
	l.qmu.Unlock()

	if !lead {
		select {
		case <-w.ready:
		case <-ctx.Done():
			l.qmu.Lock()
			if !w.taken && !w.lead {
				if i := slices.Index(l.queue, w); i >= 0 {
					l.queue = slices.Delete(l.queue, i, i+1)
				}
				l.qmu.Unlock()
				return fmt.Errorf("audit: event not recorded: %w", ctx.Err())
			}
			l.qmu.Unlock()
			<-w.ready // in a group being committed, or made the leader: see it through
		}
		// The signal orders w.lead and w.err (written before it) before these reads.
		lead = w.lead
	}
	if lead {
		l.leadGroup(w)
	}
	return w.err
}

// leadGroup commits the queued events, w's first among them (a leader's event is at the head
// of the queue), then hands leadership to the next queued caller and acknowledges the group.
func (l *Log) leadGroup(w *waiter) {
	l.qmu.Lock()
	n := min(len(l.queue), maxGroup)
	group := append(w.group[:0], l.queue[:n]...)
	for _, g := range group {
		g.taken = true
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	l.qmu.Unlock()
	if group[0] != w {
		panic("audit: group commit leader is not at the head of its group")
	}

	l.mu.Lock()
	err := l.commitGroup(group)
	l.mu.Unlock()

	l.qmu.Lock()
	if len(l.queue) > 0 {
		next := l.queue[0]
		next.lead = true
		next.ready <- struct{}{}
	} else {
		l.leading = false
	}
	l.qmu.Unlock()

	for _, g := range group {
		g.err = err
		if g != w {
			g.ready <- struct{}{}
		}
	}
	clear(group)
	w.group = group[:0]
}

// commitGroup chains the group's events in order, appends them to the store stream in one
// AppendBatch, then writes them to the file: all of them are recorded or the error applies to
// all (some may have reached the stream, never the file, when only the file failed). Under mu.
func (l *Log) commitGroup(group []*waiter) error {
	if l.closed {
		return ErrClosed
	}
	l.assignIDs(group)
	l.group = group
	_, err := l.batcher.AppendBatch(l.commitCtx.get(), l.cfg.Stream, max(l.cfg.StreamMaxLen, 0), l.groupFn)
	l.group = nil
	if err != nil {
		for _, g := range group {
			g.e.Hash = ""
		}
		l.stats.storeFailures.Add(uint64(len(group)))
		err = fmt.Errorf("audit: append event to store stream %s: %w", l.cfg.Stream, err)
		l.primaryFailed(err)
		return err
	}
	last := group[len(group)-1].e.Hash
	l.last = last
	if l.file != nil {
		var err error
		if l.file.fits(len(l.lines)) {
			err = l.file.write(l.lines, last)
		} else {
			for i, g := range group {
				if err = l.file.write(l.line(i), g.e.Hash); err != nil {
					break
				}
			}
		}
		if err != nil {
			l.stats.fileFailures.Add(uint64(len(group)))
			err = fmt.Errorf("audit: write event to file: %w", err)
			l.primaryFailed(err)
			return err
		}
	}
	if l.wantAsync() {
		// One copy of the group's lines for the secondary sinks, each event's line a piece of it.
		// Sent under mu so that Close cannot close the channel in between; never blocks.
		lines := slices.Clone(l.lines)
		for i, g := range group {
			end := len(lines)
			if i+1 < len(l.starts) {
				end = l.starts[i+1]
			}
			select {
			case l.async <- asyncItem{ev: *g.e, line: lines[l.starts[i]:end:end]}:
			default:
				l.stats.asyncDropped.Add(1)
			}
		}
	}
	return nil
}

// assignIDs gives the group's events without an ID one, cut from one string for the group.
func (l *Log) assignIDs(group []*waiter) {
	l.idBuf = l.idBuf[:0]
	for _, g := range group {
		if g.e.ID == "" {
			l.idBuf = l.ids.appendNext(l.idBuf, g.e.Time)
		}
	}
	if len(l.idBuf) == 0 {
		return
	}
	ids := string(l.idBuf)
	for _, g := range group {
		if g.e.ID == "" {
			g.e.ID, ids = ids[:idLen], ids[idLen:]
		}
	}
}

// line returns the i-th sealed line of the group, with its newline.
func (l *Log) line(i int) []byte {
	end := len(l.lines)
	if i+1 < len(l.starts) {
		end = l.starts[i+1]
	}
	return l.lines[l.starts[i]:end]
}

// chainGroup is the store.AppendBatch callback: it links the group's events to the stream's
// head and to each other, in order. It may run more than once (another writer moved the head),
// so it only computes. It runs under l.mu.
func (l *Log) chainGroup(head []byte) ([][]byte, []byte, error) {
	prev := head
	if len(prev) == 0 {
		prev = l.seed
	}
	if !isHash(prev) {
		return nil, nil, fmt.Errorf("stream head is not a hash: %.80q", prev)
	}
	l.lines = l.lines[:0]
	l.starts = l.starts[:0]
	for i, g := range l.group {
		e := g.e
		if i == 0 {
			switch {
			case string(prev) == l.last: // the usual case with one writer: no allocation
				e.PrevHash = l.last
			case string(prev) != e.PrevHash:
				e.PrevHash = string(prev)
			}
			e.ReplicaPrevHash = ""
			if l.file != nil {
				e.ReplicaPrevHash = l.file.last
			}
		} else {
			before := l.group[i-1].e.Hash
			e.PrevHash = before
			e.ReplicaPrevHash = ""
			if l.file != nil {
				e.ReplicaPrevHash = before
			}
			prev = l.prevBuf[:]
		}
		e.Hash = ""
		start := len(l.lines)
		l.lines = appendEventJSON(l.lines, e)
		chainHashScratch(l.sha, &l.sum, &l.raw, prev, l.lines[start:])
		l.lines = sealLine(l.lines, &l.sum)
		l.prevBuf = l.sum
		e.Hash = string(l.sum[:])
		l.lines = append(l.lines, '\n')
		l.starts = append(l.starts, start)
	}
	l.entries = l.entries[:0]
	for i := range l.starts {
		line := l.line(i)
		l.entries = append(l.entries, line[:len(line)-1])
	}
	return l.entries, l.prevBuf[:], nil
}
