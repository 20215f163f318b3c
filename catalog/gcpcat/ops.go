package gcpcat

import (
	"sort"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// OpInfo describes one method for `airlock catalog search/show`.
type OpInfo struct {
	IAMAction string       // compute.instances.delete
	Service   string       // compute
	Operation string       // instances.delete
	Method    string       // HTTP method
	Path      string       // path template from the host (stable version where several exist)
	Risk      catalog.Risk // default tier
}

// Methods lists every method ID once, sorted.
func Methods() []OpInfo {
	ops := mustIndex().ops
	return append([]OpInfo(nil), ops...)
}

// Lookup returns the method with this ID (compute.instances.delete).
func Lookup(id string) (OpInfo, bool) {
	ix := mustIndex()
	i, ok := ix.opByID[id]
	if !ok {
		return OpInfo{}, false
	}
	return ix.ops[i], true
}

// Search returns methods whose ID or path contains every word of text (case-insensitive),
// exact and prefix matches of the ID first. limit <= 0 means no limit.
func Search(text string, limit int) []OpInfo {
	words := strings.Fields(strings.ToLower(text))
	if len(words) == 0 {
		return nil
	}
	type hit struct {
		op   OpInfo
		rank int
	}
	var hits []hit
	whole := strings.ToLower(strings.TrimSpace(text))
	for _, op := range mustIndex().ops {
		id := strings.ToLower(op.IAMAction)
		hay := id + " " + strings.ToLower(op.Path)
		all := true
		for _, w := range words {
			if !strings.Contains(hay, w) {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		rank := 2
		switch {
		case id == whole:
			rank = 0
		case strings.HasPrefix(id, whole):
			rank = 1
		}
		hits = append(hits, hit{op, rank})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].rank < hits[j].rank })
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	out := make([]OpInfo, len(hits))
	for i, h := range hits {
		out[i] = h.op
	}
	return out
}
