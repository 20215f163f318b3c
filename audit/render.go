package audit

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// RenderJSON writes the report as indented JSON.
func RenderJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// RenderMarkdown writes the report as Markdown (for a ticket or a wiki page).
func RenderMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Airlock access report\n\n%s · %d events\n\n", periodText(r), r.Events)
	t := r.Totals
	fmt.Fprintf(&b, "| decisions | allowed | held | denied | forwarded | approved | credentials issued | people | teams |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d |\n\n", t.Decisions, t.Allowed, t.Held, t.Denied, t.Forwarded, t.Approved, t.Credentials, t.Identities, t.Teams)

	b.WriteString("## Allow-rule candidates\n\n")
	if len(r.Candidates) == 0 {
		b.WriteString("None: no held action was routinely and quickly approved.\n\n")
	}
	for _, c := range r.Candidates {
		fmt.Fprintf(&b, "**%s** on **%s** — %d requests, all approved by %s\n\n", mdEscape(c.Team), mdEscape(cmpOr(c.Target, "any target")), c.Requests, mdEscape(strings.Join(c.Approvers, ", ")))
		for _, a := range c.Actions {
			fmt.Fprintf(&b, "- `%s` (%s): %d requests, median approval %s\n", a.Action, cmpOr(a.Risk, "?"), a.Requests, humanSeconds(a.MedianSeconds))
		}
		fmt.Fprintf(&b, "\n```yaml\n%s```\n\n", c.PolicyYAML)
	}

	b.WriteString("## Standing access to remove\n\nCredentials issued but never used for a call in the period.\n\n")
	if len(r.Standing) == 0 {
		b.WriteString("None.\n\n")
	} else {
		b.WriteString("| identity | team | target | issued | last issued |\n|---|---|---|---|---|\n")
		for _, s := range r.Standing {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", mdEscape(s.Identity), mdEscape(s.Team), mdEscape(s.Target), s.Issued, s.LastIssued.Format(time.DateOnly))
		}
		b.WriteString("\n")
	}

	l := r.ApprovalLatency
	fmt.Fprintf(&b, "## Approval latency\n\n%d approvals · p50 %s · p90 %s · p99 %s · max %s\n\n", l.Count, humanSeconds(l.P50), humanSeconds(l.P90), humanSeconds(l.P99), humanSeconds(l.Max))

	b.WriteString("## Teams\n\n| team | people | allow | hold | deny | forwarded | read | write | destructive | privilege | top actions |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, u := range r.Teams {
		writeUsageRow(&b, u, fmt.Sprint(u.Members))
	}
	b.WriteString("\n## People\n\n| identity | team | allow | hold | deny | forwarded | read | write | destructive | privilege | top actions |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, u := range r.Identities {
		writeUsageRow(&b, u, mdEscape(u.Team))
	}

	fmt.Fprintf(&b, "\n## Denials\n\n%d calls denied by policy; %d requests denied by an approver, %d expired unanswered.\n\n", r.Denials.Total, r.Denials.RequestsDenied, r.Denials.RequestsExpired)
	writeCounts(&b, "rule", r.Denials.ByRule)
	writeCounts(&b, "identity", r.Denials.ByIdentity)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeUsageRow(b *strings.Builder, u UsageReport, second string) {
	var acts []string
	for i, a := range u.Actions {
		if i == 3 {
			break
		}
		acts = append(acts, fmt.Sprintf("`%s` %d", a.Action, a.Count))
	}
	fmt.Fprintf(b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n", mdEscape(u.Name), second,
		u.Decisions["allow"], u.Decisions["hold"], u.Decisions["deny"], u.Forwarded,
		u.Tiers["read"], u.Tiers["write"], u.Tiers["destructive"], u.Tiers["privilege"], strings.Join(acts, ", "))
}

func writeCounts(b *strings.Builder, what string, cs []Count) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(b, "| %s | denials |\n|---|---|\n", what)
	for _, c := range cs {
		fmt.Fprintf(b, "| %s | %d |\n", mdEscape(c.Name), c.Count)
	}
	b.WriteString("\n")
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "*", `\*`, "_", `\_`, "`", "'", "<", "&lt;").Replace(s)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func periodText(r Report) string {
	from, to := r.Since, r.Until
	if from.IsZero() {
		from = r.FirstEvent
	}
	if to.IsZero() {
		to = r.LastEvent
	}
	if from.IsZero() {
		return "no events"
	}
	return from.UTC().Format(time.DateOnly) + " to " + to.UTC().Format(time.DateOnly)
}

// humanSeconds writes a duration for people: 45s, 3m10s, 2h05m, 3d4h.
func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

//go:embed report.html.tmpl
var reportHTML string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"human":  humanSeconds,
	"period": periodText,
	"date":   func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"pct": func(part, whole int) string {
		if whole == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
	},
	"tierColor":   tierColor,
	"dailyChart":  dailyChart,
	"latencyHist": latencyChart,
	"actionChart": actionChart,
}).Parse(reportHTML))

// RenderHTML writes a self-contained HTML page (inline CSS and SVG, no external assets).
func RenderHTML(w io.Writer, r Report) error { return reportTemplate.Execute(w, r) }

// Palette: colour-blind-safe hues, dark enough for white text and for thin bars on white.
var decisionColors = map[string]string{"allow": "#1b7f4b", "hold": "#c77700", "deny": "#c0392b"}

func tierColor(tier string) string {
	switch tier {
	case "read":
		return "#2866c5"
	case "write":
		return "#138d90"
	case "destructive":
		return "#d35400"
	case "privilege":
		return "#7b3fa0"
	}
	return "#6b7280"
}

// svg helpers write into a builder; every label goes through template.HTMLEscapeString.
func esc(s string) string { return template.HTMLEscapeString(s) }

func niceMax(v int) int {
	if v <= 5 {
		return 5
	}
	p := math.Pow(10, math.Floor(math.Log10(float64(v))))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if float64(v) <= m*p {
			return int(m * p)
		}
	}
	return v
}

func dailyChart(days []DayCount) template.HTML {
	const W, H, left, bottom, top = 880, 260, 48, 28, 12
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="Calls per day by decision" xmlns="http://www.w3.org/2000/svg">`, W, H)
	if len(days) == 0 {
		b.WriteString(`<text x="20" y="40" class="muted">No decisions in this period.</text></svg>`)
		return template.HTML(b.String())
	}
	maxV := 0
	for _, d := range days {
		maxV = max(maxV, d.Allow+d.Hold+d.Deny)
	}
	maxV = niceMax(maxV)
	plotH := float64(H - bottom - top)
	slot := float64(W-left-8) / float64(len(days))
	bw := math.Max(slot*0.72, 1)
	for i := 0; i <= 4; i++ {
		v := maxV * i / 4
		y := float64(H-bottom) - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%d</text>`, left, W-8, y, y, left-6, y+4, v)
	}
	for i, d := range days {
		x := float64(left) + float64(i)*slot + (slot-bw)/2
		y := float64(H - bottom)
		for _, part := range []struct {
			name string
			n    int
		}{{"allow", d.Allow}, {"hold", d.Hold}, {"deny", d.Deny}} {
			h := plotH * float64(part.n) / float64(maxV)
			y -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %d</title></rect>`, x, y, bw, h, decisionColors[part.name], esc(d.Day), part.name, part.n)
		}
		if len(days) <= 10 || i%int(math.Ceil(float64(len(days))/10)) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, x+bw/2, H-bottom+16, esc(d.Day[5:]))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func latencyChart(l LatencyStats) template.HTML {
	const W, H, left, bottom, top = 420, 240, 40, 40, 12
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="Approval latency histogram" xmlns="http://www.w3.org/2000/svg">`, W, H)
	maxV := 0
	for _, bk := range l.Histogram {
		maxV = max(maxV, bk.Count)
	}
	maxV = niceMax(maxV)
	plotH := float64(H - bottom - top)
	slot := float64(W-left-8) / float64(max(len(l.Histogram), 1))
	for i := 0; i <= 4; i++ {
		y := float64(H-bottom) - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%d</text>`, left, W-8, y, y, left-6, y+4, maxV*i/4)
	}
	for i, bk := range l.Histogram {
		h := plotH * float64(bk.Count) / float64(maxV)
		x := float64(left) + float64(i)*slot + slot*0.1
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2" fill="#2866c5"><title>%s: %d</title></rect>`, x, float64(H-bottom)-h, slot*0.8, h, esc(bk.Label), bk.Count)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, x+slot*0.4, H-bottom+16, esc(bk.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func actionChart(actions []ActionUse) template.HTML {
	const W, rowH, left = 420, 24, 190
	H := rowH*max(len(actions), 1) + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="Top actions by risk tier" xmlns="http://www.w3.org/2000/svg">`, W, H)
	maxV := 1
	for _, a := range actions {
		maxV = max(maxV, a.Count)
	}
	for i, a := range actions {
		y := i*rowH + 4
		w := float64(W-left-56) * float64(a.Count) / float64(maxV)
		label := a.Action
		if len(label) > 28 {
			label = label[:27] + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`, left-8, y+15, esc(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"><title>%s (%s): %d</title></rect>`, left, y+3, math.Max(w, 1), rowH-8, tierColor(a.Risk), esc(a.Action), esc(a.Risk), a.Count)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis">%d</text>`, float64(left)+w+6, y+15, a.Count)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
