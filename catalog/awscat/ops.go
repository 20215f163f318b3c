package awscat

import (
	"sort"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// OpInfo describes one AWS operation for `airlock catalog search|show`.
type OpInfo struct {
	IAMAction string       `json:"iam_action"` // s3:PutBucketPolicy
	Service   string       `json:"service"`    // IAM service prefix
	Operation string       `json:"operation"`
	Protocol  string       `json:"protocol"`
	Method    string       `json:"method"`
	URI       string       `json:"uri"`
	Risk      catalog.Risk `json:"risk"`
}

// Operations returns every operation, sorted by IAM action. Operation is the API name; several
// API operations may share one IAM action (s3 ListObjects and ListObjectsV2 are s3:ListBucket).
func Operations() []OpInfo {
	ops := loadIndex().ops
	return append([]OpInfo(nil), ops...)
}

// Lookup finds an operation by IAM action name or by service:Operation API name,
// case-insensitively.
func Lookup(iamAction string) (OpInfo, bool) {
	ix := loadIndex()
	i, ok := ix.byIAM[strings.ToLower(iamAction)]
	if !ok {
		return OpInfo{}, false
	}
	return ix.ops[i], true
}

// Search finds operations by text: an IAM action pattern with * and ? ("s3:Put*Policy"), or
// words that must all occur in the IAM action ("bucket policy"). Exact matches come first, then
// prefix matches, then the rest in name order. limit <= 0 means no limit.
func Search(text string, limit int) []OpInfo {
	ix := loadIndex()
	text = strings.TrimSpace(text)
	q := strings.ToLower(text)
	var match func(o *OpInfo) bool
	if strings.ContainsAny(text, "*?") {
		match = func(o *OpInfo) bool {
			return catalog.MatchPattern(text, o.IAMAction) || catalog.MatchPattern(text, o.Service+":"+o.Operation)
		}
	} else {
		words := strings.Fields(q)
		match = func(o *OpInfo) bool {
			name := strings.ToLower(o.IAMAction + " " + o.Service + ":" + o.Operation)
			for _, w := range words {
				if !strings.Contains(name, w) {
					return false
				}
			}
			return true
		}
	}
	rank := func(o *OpInfo) int {
		name := strings.ToLower(o.IAMAction)
		switch {
		case name == q || strings.ToLower(o.Operation) == q:
			return 0
		case strings.HasPrefix(name, q) || strings.HasPrefix(strings.ToLower(o.Operation), q):
			return 1
		}
		return 2
	}
	var out []OpInfo
	for i := range ix.ops {
		if match(&ix.ops[i]) {
			out = append(out, ix.ops[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(&out[i]) < rank(&out[j]) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
