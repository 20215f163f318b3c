package awscat

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// node is one level of a per-method path trie. Matching prefers, at every segment, a literal
// child over a label over a greedy label, so "/functions/{Name}/policy" beats
// "/functions/{Name}/{Qualifier}" and never needs a scan over the service's templates.
type node struct {
	lit    map[string]*node
	label  *node
	greedy *node
	ops    []*operation
}

func (s *service) addRest(op *operation) {
	path, rawQuery, _ := strings.Cut(op.op.URI, "?")
	op.segs = splitPath(path)
	for _, q := range strings.Split(rawQuery, "&") {
		if q == "" {
			continue
		}
		k, v, has := strings.Cut(q, "=")
		op.query = append(op.query, queryLit{key: k, value: v, hasValue: has})
	}
	if s.rest == nil {
		s.rest = map[string]*node{}
	}
	n := s.rest[op.op.Method]
	if n == nil {
		n = &node{}
		s.rest[op.op.Method] = n
	}
	for _, seg := range op.segs {
		switch {
		case isGreedy(seg):
			if n.greedy == nil {
				n.greedy = &node{}
			}
			n = n.greedy
		case isLabel(seg):
			if n.label == nil {
				n.label = &node{}
			}
			n = n.label
		default:
			if seg != "" {
				op.literals++
			}
			if n.lit == nil {
				n.lit = map[string]*node{}
			}
			c := n.lit[seg]
			if c == nil {
				c = &node{}
				n.lit[seg] = c
			}
			n = c
		}
	}
	n.ops = append(n.ops, op)
}

func isLabel(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

func isGreedy(seg string) bool { return isLabel(seg) && seg[len(seg)-2] == '+' }

// splitPath splits "/a/b/" into a, b, "" (a trailing slash is a segment: templates differ by it).
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// restRequest is what template matching looks at besides the path.
type restRequest struct {
	query  url.Values
	header http.Header
}

// match walks the trie; the first complete match in literal > label > greedy order wins.
func (n *node) match(segs []string, i int, rq *restRequest) (*operation, int) {
	if i == len(segs) {
		if op, score := pickOp(n.ops, rq); op != nil {
			return op, score
		}
	} else {
		if c := n.lit[segs[i]]; c != nil {
			if op, score := c.match(segs, i+1, rq); op != nil {
				return op, score
			}
		}
		if n.label != nil && segs[i] != "" {
			if op, score := n.label.match(segs, i+1, rq); op != nil {
				return op, score
			}
		}
	}
	if n.greedy != nil {
		// A greedy label takes one segment or more, shortest first, so that a literal after it
		// ("/portals/{portalArn+}/userSettings") wins over the template that ends with it.
		for j := i + 1; j <= len(segs); j++ {
			if op, score := n.greedy.match(segs, j, rq); op != nil {
				return op, score
			}
		}
	}
	return nil, 0
}

// pickOp chooses among operations that share a method and path template: every literal query
// discriminator of the template must be present; then the operation whose required querystring
// parameters and headers are present wins (UploadPartCopy over UploadPart when
// x-amz-copy-source is set, PutObject over CopyObject when it is not).
func pickOp(ops []*operation, rq *restRequest) (*operation, int) {
	var best *operation
	bestScore := -1 << 30
	for _, op := range ops {
		score, ok := op.score(rq)
		if ok && score > bestScore {
			best, bestScore = op, score
		}
	}
	return best, bestScore
}

func (op *operation) score(rq *restRequest) (int, bool) {
	score := 0
	for _, q := range op.query {
		vs, ok := rq.query[q.key]
		if !ok || q.hasValue && (len(vs) == 0 || vs[0] != q.value) {
			return 0, false
		}
		score += 1000
	}
	missing, present := 0, 0
	for _, k := range op.op.ReqQuery {
		if rq.query.Has(k) {
			present++
		} else {
			missing++
		}
	}
	for _, h := range op.op.ReqHeader {
		if rq.header.Get(h) != "" {
			present++
		} else {
			missing++
		}
	}
	if missing == 0 {
		score += 500
	}
	if op.op.Deprecated {
		score -= 50
	}
	return score + 10*present - missing, true
}

// label returns the value of the label called name in a matched request, unescaped, or "".
// A scan of the template rather than a map of every label: calls read one or two of them.
func (op *operation) label(segs []string, name string) string {
	greedyLen := len(segs) - len(op.segs) + 1
	j := 0
	for _, t := range op.segs {
		switch {
		case isGreedy(t):
			if t[1:len(t)-2] == name {
				return catalog.PathUnescape(strings.Join(segs[j:j+greedyLen], "/"))
			}
			j += greedyLen
		case isLabel(t):
			if t[1:len(t)-1] == name {
				return catalog.PathUnescape(segs[j])
			}
			j++
		default:
			j++
		}
	}
	return ""
}
