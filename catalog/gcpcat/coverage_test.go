package gcpcat

import (
	"fmt"
	"regexp/syntax"
	"sort"
	"strings"
	"testing"
)

// wireCase is one request built from a discovery template the way a client library fills it.
type wireCase struct {
	api, version, id, form string
	req                    Request
	shape                  string
}

// wireCases builds, for every method of every API version, the request of its flat path, of
// its reserved-expansion path where the table keeps one, and of each media upload path.
func wireCases(t testing.TB) []wireCase {
	tb, err := decodeTable(discoveryTable)
	if err != nil {
		t.Fatal(err)
	}
	var cases []wireCase
	for _, a := range tb.APIs {
		for _, m := range a.Methods {
			add := func(form, tpl string, patterns map[string]string) {
				full := fullTemplate(a.ServicePath, tpl)
				cases = append(cases, wireCase{
					api: a.Name, version: a.Version, id: m.ID, form: form,
					req:   Request{Host: a.Host, Method: m.HTTPMethod, Path: "/" + fill(full, patterns)},
					shape: a.Host + " " + m.HTTPMethod + " " + shapeOf(full) + fmt.Sprint(patterns),
				})
			}
			add("flat", m.Path, nil)
			if m.Greedy != "" {
				add("reserved", m.Greedy, m.Patterns)
			}
			for _, u := range m.Uploads {
				add("upload", u, nil)
			}
		}
	}
	return cases
}

// fill puts placeholder values into a template: v1, v2, ... for single-segment variables and
// a value built from the parameter's pattern for {+var} (projects/a/locations/a/...).
func fill(tpl string, patterns map[string]string) string {
	var b strings.Builder
	n := 0
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := strings.IndexByte(tpl[i:], '}') + i
		b.WriteString(tpl[:i])
		name := tpl[i+1 : j]
		n++
		if strings.HasPrefix(name, "+") {
			b.WriteString(sample(patterns[name[1:]], n))
		} else {
			fmt.Fprintf(&b, "v%d", n)
		}
		tpl = tpl[j+1:]
	}
}

// shapeOf is the wire shape of a template: variable names do not reach the wire.
func shapeOf(tpl string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := strings.IndexByte(tpl[i:], '}') + i
		b.WriteString(tpl[:i])
		if tpl[i+1] == '+' {
			b.WriteString("{+}")
		} else {
			b.WriteString("{}")
		}
		tpl = tpl[j+1:]
	}
}

// sample returns a short string matching a discovery parameter pattern; `.*` becomes two
// segments so that greedy values with slashes are exercised.
func sample(pattern string, n int) string {
	if pattern == "" {
		return fmt.Sprintf("r%d/s%d", n, n)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return fmt.Sprintf("r%d", n)
	}
	var b strings.Builder
	gen(&b, re.Simplify())
	return b.String()
}

func gen(b *strings.Builder, re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		b.WriteRune(pickRune(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteString("a")
	case syntax.OpStar, syntax.OpPlus:
		if s := re.Sub[0]; s.Op == syntax.OpAnyChar || s.Op == syntax.OpAnyCharNotNL {
			b.WriteString("a/b")
			return
		}
		gen(b, re.Sub[0])
	case syntax.OpQuest:
		gen(b, re.Sub[0])
	case syntax.OpRepeat:
		for i := 0; i < max(re.Min, 1); i++ {
			gen(b, re.Sub[0])
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			gen(b, s)
		}
	case syntax.OpAlternate:
		gen(b, re.Sub[0])
	case syntax.OpCapture:
		gen(b, re.Sub[0])
	}
}

func pickRune(ranges []rune) rune {
	in := func(r rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= r && r <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	for _, r := range "abcxyz019ABCZ-_." {
		if in(r) {
			return r
		}
	}
	if len(ranges) > 0 {
		return ranges[0]
	}
	return 'a'
}

// identicalShapes lists the method IDs that share one wire shape (host, HTTP method, path
// template): no namer can tell them apart from the request line, so a miss among them is
// not a namer bug. The reason is logged with the shape.
func identicalShapes(cases []wireCase) map[string][]string {
	ids := map[string]map[string]bool{}
	for _, c := range cases {
		if ids[c.shape] == nil {
			ids[c.shape] = map[string]bool{}
		}
		ids[c.shape][c.id] = true
	}
	out := map[string][]string{}
	for shape, set := range ids {
		if len(set) < 2 {
			continue
		}
		for id := range set {
			out[shape] = append(out[shape], id)
		}
		sort.Strings(out[shape])
	}
	return out
}

// ambiguous lists the requests that the discovery documents do not tell apart although their
// templates differ, keyed by method ID and form, with the reason.
var ambiguous = map[string]string{
	"firestore.projects.databases.documents.get reserved": "GET v1/{+name} (document) and GET v1/{+parent}/{collectionId} " +
		"(list) accept the same paths: both patterns are documents/[^/]+/.*; only the parity of the segment " +
		"count tells a document from a collection, which discovery does not encode. Both are reads.",
}

func TestCoverageEveryDiscoveryMethod(t *testing.T) {
	cases := wireCases(t)
	shared := identicalShapes(cases)
	type tally struct{ ok, total int }
	perAPI := map[string]*tally{}
	perForm := map[string]*tally{}
	var misses, sharedMisses []string
	for _, c := range cases {
		key := c.api + "/" + c.version
		if perAPI[key] == nil {
			perAPI[key] = &tally{}
		}
		if perForm[c.form] == nil {
			perForm[c.form] = &tally{}
		}
		perAPI[key].total++
		perForm[c.form].total++
		got := Name(c.req)
		if got.IAMAction == c.id && got.Known {
			perAPI[key].ok++
			perForm[c.form].ok++
			continue
		}
		line := fmt.Sprintf("%s %s %s %s%s: got %s", c.id, c.form, c.req.Method, c.req.Host, c.req.Path, got.IAMAction)
		if ids, ok := shared[c.shape]; ok {
			sharedMisses = append(sharedMisses, line+" (identical wire shape: "+strings.Join(ids, ", ")+")")
			continue
		}
		if reason, ok := ambiguous[c.id+" "+c.form]; ok {
			sharedMisses = append(sharedMisses, line+" ("+reason+")")
			continue
		}
		misses = append(misses, line)
	}
	keys := make([]string, 0, len(perAPI))
	for k := range perAPI {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ok, total := 0, 0
	full := 0
	for _, k := range keys {
		ok += perAPI[k].ok
		total += perAPI[k].total
		if perAPI[k].ok == perAPI[k].total {
			full++
		} else {
			t.Logf("api %-40s %5d/%-5d", k, perAPI[k].ok, perAPI[k].total)
		}
	}
	for form, c := range perForm {
		t.Logf("form %-8s %d/%d", form, c.ok, c.total)
	}
	t.Logf("GCP coverage: %d/%d requests named back (%.2f%%); %d of %d API versions at 100%%; %d identical-shape groups",
		ok, total, 100*float64(ok)/float64(total), full, len(keys), len(shared))
	for _, s := range sharedMisses {
		t.Logf("allowed miss: %s", s)
	}
	for _, s := range misses {
		t.Errorf("miss: %s", s)
	}
}
