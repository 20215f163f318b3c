package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/audit"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

func init() {
	register(command{name: "audit", summary: "verify the audit hash chain, follow the live audit stream", run: auditCmd})
}

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "Usage: airlock audit <verify|tail> [flags]")
		fmt.Fprintln(stderr, "\n  verify FILE...            check the hash chain of JSONL files (rotated sets included)")
		fmt.Fprintln(stderr, "  verify --redis URL        check the chain of the Redis audit stream")
		fmt.Fprintln(stderr, "  tail --server URL         follow the live audit stream (filters: --identity --action --decision --kind)")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "verify":
		return auditVerifyCmd(ctx, args[1:], stdout, stderr)
	case "tail":
		return auditTailCmd(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "airlock audit: unknown subcommand %q (verify, tail)\n", args[0])
	return errUsage
}

func auditVerifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify", "audit verify [--chain file|global] [--no-rotated] [--json] FILE... | --redis URL [--stream KEY]", stderr)
	chain := fs.String("chain", "file", `links to follow: "file" (one replica's file: replica_prev_hash) or "global" (prev_hash: an export of the stream, GET /api/v1/audit)`)
	noRotated := fs.Bool("no-rotated", false, "check only the named files, not their rotated predecessors (FILE.000001, ...)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	redisURL := fs.String("redis", envOr("AIRLOCK_REDIS_URL", ""), "verify the Redis audit stream instead of files (env AIRLOCK_REDIS_URL)")
	stream := fs.String("stream", audit.DefaultStream, "the audit stream's key (with --redis)")
	prefix := fs.String("key-prefix", "", "Redis key prefix (the config's redis.key_prefix; default the store's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	mode := audit.ChainFile
	switch *chain {
	case "file":
	case "global":
		mode = audit.ChainGlobal
	default:
		fmt.Fprintf(stderr, "airlock audit verify: --chain must be file or global\n")
		return errUsage
	}

	type outcome struct {
		Source string             `json:"source"`
		Files  []string           `json:"files,omitempty"`
		Result audit.VerifyResult `json:"result"`
	}
	var outcomes []outcome
	report := func(o outcome) {
		outcomes = append(outcomes, o)
		if *asJSON {
			return
		}
		r := o.Result
		if r.Bad != nil {
			fmt.Fprintf(stdout, "%s: BROKEN after %d good events: %s\n", o.Source, r.Events, r.Bad.Error())
			return
		}
		where := o.Source
		if len(o.Files) > 1 {
			where = fmt.Sprintf("%s (%d files)", o.Source, len(o.Files))
		}
		start := "complete from the first event"
		if r.Events > 0 && !r.Complete() {
			start = fmt.Sprintf("starts after earlier events that are not here (first event %s links to %.12s…: rotated away, trimmed, or removed)", r.FirstID, r.FirstLink)
		}
		fmt.Fprintf(stdout, "%s: OK, %d events, %s; last hash %s\n", where, r.Events, start, r.LastHash)
	}
	finish := func(err error) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(outcomes)
		}
		return err
	}

	if *redisURL != "" {
		if fs.NArg() > 0 {
			fmt.Fprintln(stderr, "airlock audit verify: give files or --redis, not both")
			return errUsage
		}
		st, err := redisstore.New(ctx, redisstore.Config{URL: *redisURL, KeyPrefix: *prefix})
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := audit.VerifyStore(ctx, st, *stream)
		var bad *audit.BadEvent
		if err != nil && !errors.As(err, &bad) {
			return err
		}
		report(outcome{Source: "stream " + *stream, Result: res})
		return finish(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "airlock audit verify: name at least one FILE (or --redis URL)")
		fs.Usage()
		return errUsage
	}
	sets, err := verifySets(fs.Args(), !*noRotated)
	if err != nil {
		return err
	}
	var firstBad error
	for _, set := range sets {
		res, err := audit.VerifyFiles(mode, set.files...)
		var bad *audit.BadEvent
		if err != nil && !errors.As(err, &bad) {
			return finish(err)
		}
		report(outcome{Source: set.name, Files: set.files, Result: res})
		if err != nil && firstBad == nil {
			firstBad = err
		}
	}
	return finish(firstBad)
}

type fileSet struct {
	name  string
	files []string
}

// verifySets groups the named files into chains: FILE and its rotated files FILE.000001, ...
// form one chain, checked oldest first whatever order the shell listed them in.
func verifySets(args []string, expand bool) ([]fileSet, error) {
	var order []string
	groups := map[string][]string{}
	for _, a := range args {
		base := a
		if i := strings.LastIndexByte(a, '.'); i > 0 {
			if n, err := strconv.Atoi(a[i+1:]); err == nil && n > 0 {
				base = a[:i]
			}
		}
		if _, ok := groups[base]; !ok {
			order = append(order, base)
		}
		if expand && base == a {
			set, err := audit.FileSet(a)
			if err != nil {
				return nil, err
			}
			groups[base] = append(groups[base], set...)
		} else {
			if _, err := os.Stat(a); err != nil {
				return nil, err
			}
			groups[base] = append(groups[base], a)
		}
	}
	out := make([]fileSet, 0, len(order))
	for _, base := range order {
		files := groups[base]
		slices.SortStableFunc(files, func(x, y string) int { return rotationSeq(x, base) - rotationSeq(y, base) })
		files = slices.Compact(files)
		out = append(out, fileSet{name: base, files: files})
	}
	return out, nil
}

// rotationSeq orders a rotated set: FILE.000001 < FILE.000002 < FILE (the live file is newest).
func rotationSeq(path, base string) int {
	if path == base {
		return int(^uint(0) >> 2)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(path, base+"."))
	return n
}

func auditTailCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit tail", "audit tail --server URL [--identity X] [--action GLOB] [--decision D] [--kind K] [--json]", stderr)
	server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock server URL (env AIRLOCK_SERVER)")
	token := fs.String("token", "", "bearer token (default: env AIRLOCK_TOKEN, else the login saved by 'airlock login')")
	identity := fs.String("identity", "", "only events about this subject or email")
	action := fs.String("action", "", `only actions matching this glob, e.g. "ec2:*"`)
	decision := fs.String("decision", "", "only this decision: allow, hold, deny")
	kind := fs.String("kind", "", "only this kind: decision, approval, forward, credential, login")
	asJSON := fs.Bool("json", false, "print each event as a JSON line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" {
		fmt.Fprintln(stderr, "airlock audit tail: --server is required")
		return errUsage
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("AIRLOCK_TOKEN")
	}
	if tok == "" {
		var err error
		if tok, err = loadToken(ctx, *server); err != nil {
			return fmt.Errorf("%w (run 'airlock login --server %s', or pass --token / AIRLOCK_TOKEN)", err, *server)
		}
	}
	q := url.Values{}
	for k, v := range map[string]string{"identity": *identity, "action": *action, "decision": *decision, "kind": *kind} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u := strings.TrimRight(*server, "/") + "/api/v1/audit/stream"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	show := func(e audit.Event, raw []byte) {
		if *asJSON {
			stdout.Write(append(bytes.TrimSpace(raw), '\n'))
			return
		}
		fmt.Fprintln(stdout, formatEvent(&e))
	}
	backoff := time.Second
	for {
		err := tailOnce(ctx, u, tok, show)
		if ctx.Err() != nil {
			return nil
		}
		var fatal *tailFatal
		if errors.As(err, &fatal) {
			return err
		}
		fmt.Fprintf(stderr, "airlock audit tail: %v; reconnecting in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// tailFatal is an answer that retrying will not change (401, 403, 404).
type tailFatal struct{ msg string }

func (e *tailFatal) Error() string { return e.msg }

// tailOnce reads the server-sent events of one connection until it ends.
func tailOnce(ctx context.Context, u, token string, show func(audit.Event, []byte)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &tailFatal{err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := fmt.Sprintf("%s: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound {
			return &tailFatal{msg}
		}
		return errors.New(msg)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []byte
	event := ""
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of one event
			if len(data) > 0 && (event == "" || event == "audit") {
				var e audit.Event
				if err := json.Unmarshal(data, &e); err == nil {
					show(e, data)
				}
			}
			data, event = data[:0], ""
		case line[0] == ':': // comment / keepalive
		case bytes.HasPrefix(line, []byte("data:")):
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		case bytes.HasPrefix(line, []byte("event:")):
			event = strings.TrimSpace(string(line[len("event:"):]))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("stream closed by the server")
}

// formatEvent is one readable line: time, kind/step, decision, who, what, where, why.
func formatEvent(e *audit.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("2006-01-02 15:04:05"))
	kind := e.Kind
	if e.Step != "" {
		kind += "/" + e.Step
	}
	fmt.Fprintf(&b, "  %-20s %-5s %s", kind, e.Decision, cmpOrStr(e.Identity.Email, e.Identity.Subject))
	if e.Action != "" {
		fmt.Fprintf(&b, "  %s", e.Action)
	}
	if e.Resource != "" {
		fmt.Fprintf(&b, " %s", e.Resource)
	}
	if e.Target != "" {
		fmt.Fprintf(&b, "  target=%s", e.Target)
	}
	if e.Policy != "" {
		fmt.Fprintf(&b, "  policy=%s", e.Policy)
	}
	if len(e.Approvers) > 0 {
		fmt.Fprintf(&b, "  approvers=%s", strings.Join(e.Approvers, ","))
	}
	if e.UpstreamStatus != 0 {
		fmt.Fprintf(&b, "  status=%d", e.UpstreamStatus)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "  reason=%q", e.Reason)
	}
	if id := cmpOrStr(e.ApprovalID, e.RequestID); id != "" {
		fmt.Fprintf(&b, "  [%s]", id)
	}
	return b.String()
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fileList is a repeatable flag of file paths.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, filepath.Clean(v)); return nil }

var _ flag.Value = (*fileList)(nil)
