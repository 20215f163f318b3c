package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/config"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

func init() {
	register(command{name: "report", summary: "access-pattern report over the audit history (html, md, json)", run: reportCmd})
}

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "report --since 30d [--format html|md|json] [--file audit.jsonl ...] [--redis URL --stream KEY] [--out FILE]", stderr)
	sinceFlag := fs.String("since", "30d", "how far back to look (e.g. 7d, 30d, 12h)")
	format := fs.String("format", "html", "html, md or json")
	var files fileList
	fs.Var(&files, "file", "audit JSONL file (repeatable; its rotated files are read too, oldest first)")
	redisURL := fs.String("redis", envOr("AIRLOCK_REDIS_URL", ""), "read the Redis audit stream (env AIRLOCK_REDIS_URL)")
	stream := fs.String("stream", audit.DefaultStream, "the audit stream's key (with --redis)")
	prefix := fs.String("key-prefix", "", "Redis key prefix (the config's redis.key_prefix; default the store's)")
	configPath := fs.String("config", envOr("AIRLOCK_CONFIG", ""), "take audit.file or redis.url from this config when neither --file nor --redis is given")
	out := fs.String("out", "", "write the report here instead of stdout")
	teamPrefix := fs.String("team-prefix", "", `a team is the requester's first group with this prefix (e.g. "team-"); default: the first group`)
	minRequests := fs.Int("min-requests", 5, "allow-rule candidates: held at least this many times")
	maxMedian := fs.String("max-median", "15m", "allow-rule candidates: median approval latency at most this")
	maxApprovers := fs.Int("max-approvers", 3, "allow-rule candidates: approved by at most this many people")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	window, err := config.ParseDuration(*sinceFlag)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	median, err := config.ParseDuration(*maxMedian)
	if err != nil {
		return fmt.Errorf("--max-median: %w", err)
	}
	render := map[string]func(io.Writer, audit.Report) error{
		"html": audit.RenderHTML, "md": audit.RenderMarkdown, "markdown": audit.RenderMarkdown, "json": audit.RenderJSON,
	}[*format]
	if render == nil {
		fmt.Fprintf(stderr, "airlock report: --format must be html, md or json\n")
		return errUsage
	}
	if len(files) == 0 && *redisURL == "" && *configPath != "" {
		cfg, err := config.Load(*configPath)
		if err != nil {
			return err
		}
		if cfg.Redis.URL != "" {
			*redisURL, *prefix = cfg.Redis.URL, cfg.Redis.KeyPrefix
			if cfg.Audit.RedisStream != "" {
				*stream = cfg.Audit.RedisStream
			}
		} else if cfg.Audit.File != "" {
			files = append(files, cfg.Audit.File)
		}
	}
	if len(files) == 0 && *redisURL == "" {
		fmt.Fprintln(stderr, "airlock report: give --file FILE or --redis URL (or --config with audit.file / redis.url)")
		return errUsage
	}

	since := time.Now().Add(-window)
	opts := audit.ReportOptions{Since: since, CandidateMinRequests: *minRequests,
		CandidateMaxMedian: median, CandidateMaxApprovers: *maxApprovers}
	if *teamPrefix != "" {
		opts.TeamOf = audit.TeamFromGroupPrefix(*teamPrefix)
	}
	b := audit.NewReportBuilder(opts)
	for _, f := range files {
		set, err := audit.FileSet(f)
		if err != nil {
			return err
		}
		for _, p := range set {
			if err := readEventsFile(p, b.Add); err != nil {
				return err
			}
		}
	}
	if *redisURL != "" {
		st, err := redisstore.New(ctx, redisstore.Config{URL: *redisURL, KeyPrefix: *prefix})
		if err != nil {
			return err
		}
		defer st.Close()
		// Redis stream IDs start with the append time in milliseconds: skip older entries.
		after := fmt.Sprintf("%d-0", since.Add(-time.Hour).UnixMilli())
		for {
			entries, err := st.Range(ctx, *stream, after, 2000)
			if err != nil {
				return fmt.Errorf("read %s: %w", *stream, err)
			}
			for _, en := range entries {
				var e audit.Event
				if err := json.Unmarshal(en.Value, &e); err != nil {
					return fmt.Errorf("stream entry %s: %w", en.ID, err)
				}
				b.Add(&e)
				after = en.ID
			}
			if len(entries) < 2000 {
				break
			}
		}
	}
	report := b.Report()

	w := stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		if err := render(bw, report); err != nil {
			f.Close()
			return err
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "airlock report: %d events, %d allow-rule candidates, %d unused grants → %s\n",
			report.Events, len(report.Candidates), len(report.Standing), *out)
		return nil
	}
	return render(w, report)
}

// readEventsFile streams one JSONL file into add, one event at a time.
func readEventsFile(path string, add func(*audit.Event)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	lineNo := 0
	var e audit.Event
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			lineNo++
			e = audit.Event{}
			if jerr := json.Unmarshal(line, &e); jerr != nil {
				if errors.Is(err, io.EOF) {
					break // a torn last line (the writer was cut off): what came before still counts
				}
				return fmt.Errorf("%s line %d: %w", path, lineNo, jerr)
			}
			add(&e)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	return nil
}
