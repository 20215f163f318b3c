// Command airlock-bench measures what Airlock costs an allowed call. In one process on loopback
// it runs the same workload three ways — client → upstream directly, client → a plain
// re-signing reverse proxy (the floor for any SigV4 re-signing proxy), client → Airlock wired as
// `airlock serve` wires it — against a local upstream that verifies SigV4 like AWS, and prints
// throughput, latency percentiles, the ratios between the modes, Airlock's CPU and allocations
// per call, latency at a fixed moderate rate (open loop), 64 MiB streamed transfers, a
// cold-cache credential minting burst and many calls held for approval at once. The output is
// Markdown (bench/RESULTS.md is one run of it).
//
//	go run ./cmd/airlock-bench -duration 20s -concurrency 16 [-redis redis://127.0.0.1:6379/0 -replicas 2] [-held 10000]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/authn"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

type options struct {
	duration, warmup time.Duration
	concurrency      int
	rounds           int
	redisURL         string
	replicas         int
	rate             float64
	held             int
	approvers        int
	approveRate      float64
	burst            int
	skip             string
	soak             time.Duration
	profile          string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time per mode")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up per mode")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent client workers")
	flag.IntVar(&o.rounds, "rounds", 4, "the modes take turns this many times (duration split between the turns), so background load on the machine hits every mode alike")
	flag.StringVar(&o.redisURL, "redis", "", "also run Airlock on this Redis (redis://host:port/db); its keys get a unique prefix")
	flag.IntVar(&o.replicas, "replicas", 1, "with -redis: Airlock replicas for the held-calls and minting runs (2: calls held on one, approved on the other)")
	flag.Float64Var(&o.rate, "rate", 500, "calls per second of the fixed-rate (open-loop) pass, run for -duration per mode in -rounds turns, latency counted from each call's due time (0 = skip)")
	flag.IntVar(&o.held, "held", 1000, "calls to hold for approval at once (0 = skip)")
	flag.IntVar(&o.approvers, "approvers", 4, "concurrent approvers releasing the held calls")
	flag.Float64Var(&o.approveRate, "approve-rate", 500, "approvals per second when releasing held calls (0 = as fast as the approvers go)")
	flag.IntVar(&o.burst, "burst", 1000, "concurrent calls of the cold-cache minting burst (0 = skip)")
	flag.StringVar(&o.profile, "profile", "", "write pprof CPU, heap, block and mutex profiles of the Airlock load passes to this directory (memory/ and redis/; the 64 MiB transfers under transfer/; the approve-and-release part of the held-calls runs under held-memory/ and held-redis/)")
	flag.DurationVar(&o.soak, "soak", 0, "after the other phases, drive each Airlock (memory store, then Redis with -redis) this long and sample the process's memory (0 = skip)")
	flag.StringVar(&o.skip, "skip", "", "comma-separated phases to skip: transfer,load,rate,burst,held")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: airlock-bench [flags]\n\nMeasures Airlock against a direct call and a plain re-signing proxy, on loopback.\n\n")
		flag.PrintDefaults()
	}
	heldClientURL := flag.String("held-client", "", "internal: run as the held-calls client process against this URL")
	flag.Parse()
	if *heldClientURL != "" {
		if err := heldClient(*heldClientURL, o.held); err != nil {
			fmt.Fprintln(os.Stderr, "airlock-bench held client:", err)
			os.Exit(1)
		}
		return
	}
	if o.replicas < 1 || o.replicas > 2 || (o.replicas == 2 && o.redisURL == "") {
		fmt.Fprintln(os.Stderr, "airlock-bench: -replicas is 1 or 2, and 2 needs -redis")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "airlock-bench:", err)
		os.Exit(1)
	}
}

// profileDir is where -profile puts the profiles of one pass ("" without -profile).
func (o options) profileDir(pass string) string {
	if o.profile == "" {
		return ""
	}
	return filepath.Join(o.profile, pass)
}

func (o options) skipped(phase string) bool {
	for p := range strings.SplitSeq(o.skip, ",") {
		if strings.TrimSpace(p) == phase {
			return true
		}
	}
	return false
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func run(o options) error {
	ctx := context.Background()
	raiseFileLimit(uint64(4*max(o.held, o.burst) + 4096))
	dir, err := os.MkdirTemp("", "airlock-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The credentials the upstream accepts are the temporary ones the local STS hands out;
	// the STS accepts the broker's base credentials.
	minted := aws.Credentials{AccessKeyID: "ASIABENCHMINTED00001", SecretAccessKey: "bench-minted-secret-0123456789abcdef", SessionToken: "bench-minted-session-token"}
	base := struct{ id, secret string }{"AKIABENCHBASE0000001", "bench-base-secret-0123456789abcdef"}
	setBenchEnv(base)
	up := &fakeAWS{check: sigV4Checker{creds: minted}}
	upURL, closeUp, err := serve(up)
	if err != nil {
		return err
	}
	defer closeUp()
	sts := &fakeSTS{check: sigV4Checker{creds: aws.Credentials{AccessKeyID: base.id, SecretAccessKey: base.secret}}, minted: minted, calls: map[string]int{}}
	stsURL, closeSTS, err := serve(sts)
	if err != nil {
		return err
	}
	defer closeSTS()
	plainURL, closePlain, err := serve(plainProxy(upURL, minted))
	if err != nil {
		return err
	}
	defer closePlain()

	prefix := fmt.Sprintf("airlock-bench-%d", time.Now().Unix())
	if o.redisURL != "" {
		// Deferred first, so it runs last, after every instance has closed: the run's keys
		// (audit streams of hundreds of thousands of events) do not stay behind in Redis.
		defer cleanRedis(o.redisURL, prefix+"-")
	}
	mem, err := startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "memory"})
	if err != nil {
		return fmt.Errorf("start airlock: %w", err)
	}
	defer mem.Close()
	var rds *airlockInstance
	if o.redisURL != "" {
		rds, err = startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "redis",
			redisURL: o.redisURL, keyPrefix: prefix + "-load:"})
		if err != nil {
			return fmt.Errorf("start airlock on redis: %w", err)
		}
		defer rds.Close()
	}

	alice := authn.Identity{Subject: "alice", Email: "alice@example.com", Groups: []string{"engineers"}}
	clientFor := func(url string, inst *airlockInstance) *signedClient {
		c := &signedClient{http: newHTTPClient(2 * o.concurrency), base: url, creds: minted, signer: v4.NewSigner()}
		if inst != nil {
			ac, err := inst.issuer.IssueAWS(alice, "bench", "benchmark")
			if err != nil {
				panic(err)
			}
			c.creds = aws.Credentials{AccessKeyID: ac.AccessKeyID, SecretAccessKey: ac.SecretAccessKey, SessionToken: ac.SessionToken}
		}
		return c
	}
	type mode struct {
		name    string
		c       *signedClient
		auditor *countingAuditor // nil for direct and the plain proxy
	}
	modes := []mode{{"direct", clientFor(upURL, nil), nil}, {"plain re-signing proxy", clientFor(plainURL, nil), nil},
		{"airlock (memory store)", clientFor(mem.URL, mem), mem.holds}}
	if rds != nil {
		modes = append(modes, mode{"airlock (redis store)", clientFor(rds.URL, rds), rds.holds})
	}

	printHeader(o)
	// One call of each kind per mode first: the catalog index (~30 MiB, built once per process)
	// and the first credential mint must not be counted as transfer memory or call latency.
	for _, m := range modes {
		for i := range workload {
			req, err := m.c.request(ctx, &workload[i], nil, 0, "")
			if err != nil {
				return err
			}
			if status, _, err := m.c.do(req); err != nil || status >= 300 {
				return fmt.Errorf("warm-up %s via %s: status %d, %v", workload[i].name, m.name, status, err)
			}
		}
	}

	if !o.skipped("transfer") {
		var trs []transferResult
		for _, m := range modes {
			logf("64 MiB transfers: %s", m.name)
			stop := func() {}
			if o.profile != "" && m.name == "airlock (memory store)" {
				if stop, err = startProfiles(filepath.Join(o.profile, "transfer")); err != nil {
					return err
				}
			}
			trs = append(trs, runTransfers(m.name, m.c, up))
			stop()
		}
		printTransfers(trs)
	}

	capacity := map[string]float64{} // closed-loop calls/s of each mode, for the fixed-rate pass
	if !o.skipped("load") {
		results := make([]loadResult, len(modes))
		rounds := max(o.rounds, 1)
		for round := 0; round < rounds; round++ {
			for i, m := range modes {
				logf("load round %d/%d: %s for %s at concurrency %d", round+1, rounds, m.name, o.duration/time.Duration(rounds), o.concurrency)
				stop := func() {}
				if o.profile != "" && strings.HasPrefix(m.name, "airlock") && round == 0 {
					sub := "memory"
					if strings.Contains(m.name, "redis") {
						sub = "redis"
					}
					if stop, err = startProfiles(filepath.Join(o.profile, sub)); err != nil {
						return err
					}
				}
				results[i] = results[i].merge(runLoad(m.name, m.c, o.concurrency, o.warmup, o.duration/time.Duration(rounds)))
				stop()
			}
		}
		printLoad(o, results)
		for _, r := range results {
			capacity[r.mode] = r.throughput()
		}
		if n := up.refused.Load(); n > 0 {
			fmt.Printf("\n**The upstream refused %d signatures** (last: %v).\n", n, up.lastErr.Load())
		}
	}

	if !o.skipped("rate") && o.rate > 0 {
		results := make([]rateResult, len(modes))
		rounds := max(o.rounds, 1)
		for round := 0; round < rounds; round++ {
			for i, m := range modes {
				logf("fixed-rate round %d/%d: %s for %s at %.0f calls/s", round+1, rounds, m.name, o.duration/time.Duration(rounds), o.rate)
				// Open loop: more calls may be in flight than the closed loop's workers; keep
				// their connections instead of opening new ones.
				c := *m.c
				c.http = newHTTPClient(256)
				var measured func()
				if m.auditor != nil {
					measured = m.auditor.startTiming
				}
				r := runRate(m.name, &c, o.rate, o.warmup, o.duration/time.Duration(rounds), measured)
				if m.auditor != nil {
					r.commits = m.auditor.stopTiming()
				}
				results[i] = results[i].merge(r)
			}
		}
		printRate(o, results, capacity)
	}

	if o.soak > 0 {
		for _, m := range modes[2:] { // the Airlock modes: memory store, then Redis when given
			logf("soak: %s for %s", m.name, o.soak)
			printSoak(o, m.name, runSoak(m.c, o.concurrency, o.soak))
		}
	}

	if !o.skipped("burst") && o.burst > 0 {
		var mrs []mintResult
		logf("minting burst on a cold memory instance")
		cold, err := startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "burst-memory"})
		if err != nil {
			return err
		}
		mrs = append(mrs, runMintBurst("memory store, 1 replica", []*airlockInstance{cold}, sts, o.burst, 4))
		cold.Close()
		if o.redisURL != "" {
			logf("minting burst on cold redis instances")
			var insts []*airlockInstance
			for i := 0; i < o.replicas; i++ {
				inst, err := startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: fmt.Sprintf("burst-redis-%d", i),
					redisURL: o.redisURL, keyPrefix: prefix + "-burst:"})
				if err != nil {
					return err
				}
				insts = append(insts, inst)
			}
			mrs = append(mrs, runMintBurst(fmt.Sprintf("redis store, %d replica(s)", o.replicas), insts, sts, o.burst, 4))
			for _, inst := range insts {
				inst.Close()
			}
		}
		printMint(mrs)
	}

	if !o.skipped("held") && o.held > 0 {
		var hrs []heldResult
		logf("holding %d calls on a fresh memory instance", o.held)
		hm, err := startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "held-memory"})
		if err != nil {
			return err
		}
		hrs = append(hrs, runHeld("memory store, 1 replica", hm, hm, o.held, o.approvers, o.approveRate, o.profileDir("held-memory")))
		hm.Close()
		if o.redisURL != "" {
			logf("holding %d calls on redis (%d replicas)", o.held, o.replicas)
			a, err := startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "held-redis-a",
				redisURL: o.redisURL, keyPrefix: prefix + "-held:"})
			if err != nil {
				return err
			}
			b := a
			label := "redis store, 1 replica"
			if o.replicas == 2 {
				if b, err = startAirlock(ctx, airlockOptions{upstreamURL: upURL, stsURL: stsURL, dir: dir, name: "held-redis-b",
					redisURL: o.redisURL, keyPrefix: prefix + "-held:"}); err != nil {
					return err
				}
				label = "redis store, held on replica A, approved on replica B"
			}
			hrs = append(hrs, runHeld(label, a, b, o.held, o.approvers, o.approveRate, o.profileDir("held-redis")))
			if b != a {
				b.Close()
			}
			a.Close()
		}
		printHeld(o, hrs)
	}
	return nil
}

// startProfiles starts a CPU profile and writes a heap profile now and when stopped, so that
// `go tool pprof -sample_index=alloc_objects -base heap-before.pb.gz heap-after.pb.gz` shows
// the allocations of the profiled pass alone.
func startProfiles(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	heap := func(name string) {
		f, err := os.Create(filepath.Join(dir, name))
		if err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	heap("heap-before.pb.gz")
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(5)
	f, err := os.Create(filepath.Join(dir, "cpu.pb.gz"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		heap("heap-after.pb.gz")
		for _, name := range []string{"block", "mutex"} {
			if f, err := os.Create(filepath.Join(dir, name+".pb.gz")); err == nil {
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

func printHeader(o options) {
	fmt.Printf("## airlock-bench run of %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("- command: `go run ./cmd/airlock-bench %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("- %s, %s/%s, GOMAXPROCS=%d, NumCPU=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	if out, err := exec.Command("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").Output(); err == nil {
		fmt.Printf("- CPU:%s", out)
	}
	fmt.Println("- everything (client, upstream, STS, proxies) runs in this one process on loopback and shares the CPUs")
	fmt.Println()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func printLoad(o options, rs []loadResult) {
	fmt.Printf("### Control-plane calls (EC2 DescribeInstances query, DynamoDB GetItem JSON, S3 GetObject/HeadObject/ListObjectsV2 REST), concurrency %d, %s per mode in %d interleaved turns\n\n", o.concurrency, o.duration, max(o.rounds, 1))
	fmt.Println("| mode | calls | calls/s | p50 ms | p99 ms | p99.9 ms | errors | CPU µs/call (process) | allocs/call (process) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Printf("| %s | %d | %.0f | %s | %s | %s | %d | %.0f | %.0f |\n", r.mode, r.calls, r.throughput(), ms(r.pct(.5)), ms(r.pct(.99)), ms(r.pct(.999)),
			r.errors, float64(r.cpu.Microseconds())/float64(r.calls), float64(r.mallocs)/float64(r.calls))
	}
	for _, r := range rs {
		if r.firstErr != "" {
			fmt.Printf("\nfirst error in %s: %s\n", r.mode, r.firstErr)
		}
	}
	direct, plain := rs[0], rs[1]
	fmt.Println()
	fmt.Println("| Airlock run | throughput ÷ direct | throughput ÷ plain proxy | p50 added over direct ms | p99 added over direct ms | p99 added over plain proxy ms | Airlock CPU µs/call | Airlock allocs/call |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs[2:] {
		cpu := float64(r.cpu.Microseconds())/float64(r.calls) - float64(direct.cpu.Microseconds())/float64(direct.calls)
		allocs := float64(r.mallocs)/float64(r.calls) - float64(direct.mallocs)/float64(direct.calls)
		fmt.Printf("| %s | %.2f | %.2f | %s | %s | %s | %.0f | %.0f |\n", r.mode, r.throughput()/direct.throughput(), r.throughput()/plain.throughput(),
			ms(r.pct(.5)-direct.pct(.5)), ms(r.pct(.99)-direct.pct(.99)), ms(r.pct(.99)-plain.pct(.99)), cpu, allocs)
	}
	fmt.Println()
	fmt.Println("Airlock CPU and allocations per call are the process's per-call figures in the Airlock pass minus those of the direct pass (client and upstream do the same work in both); each pass runs alone. The plain proxy's own cost is the same difference for its row:")
	fmt.Printf("plain proxy CPU %.0f µs/call, %.0f allocs/call.\n\n",
		float64(plain.cpu.Microseconds())/float64(plain.calls)-float64(direct.cpu.Microseconds())/float64(direct.calls),
		float64(plain.mallocs)/float64(plain.calls)-float64(direct.mallocs)/float64(direct.calls))
}

func printTransfers(ts []transferResult) {
	fmt.Println("### 64 MiB S3 PutObject (UNSIGNED-PAYLOAD) and GetObject, streamed")
	fmt.Println()
	fmt.Println("| mode | put MiB/s | put peak RSS growth MiB | get MiB/s | get peak RSS growth MiB | ok |")
	fmt.Println("|---|---:|---:|---:|---:|---|")
	for _, t := range ts {
		ok := "yes"
		if !t.putOK || !t.getOK {
			ok = "NO " + t.err
		}
		fmt.Printf("| %s | %.0f | %.1f | %.0f | %.1f | %s |\n", t.mode, 64/t.putSecs, float64(t.putGrowth)/(1<<20), 64/t.getSecs, float64(t.getGrowth)/(1<<20), ok)
	}
	fmt.Println()
	fmt.Println("Peak RSS growth is VmHWM after the transfer minus VmRSS before it (VmHWM reset through /proc/self/clear_refs), for the whole process: client, proxy and upstream together.")
	fmt.Println()
}

func printSoak(o options, mode string, samples []soakSample) {
	fmt.Printf("### Soak: %s under the control-plane workload for %s, concurrency %d\n\n", mode, o.soak, o.concurrency)
	fmt.Println("| elapsed | calls so far | process RSS MiB | Go heap in use MiB | goroutines |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	for _, s := range samples {
		fmt.Printf("| %s | %d | %.0f | %.0f | %d |\n", s.at.Round(time.Second), s.calls, float64(s.rssKB)/1024, float64(s.heap)/(1<<20), s.goroutines)
	}
	fmt.Println()
	if strings.Contains(mode, "memory") {
		fmt.Println("The in-memory store keeps the newest 100,000 audit events (about 50,000 calls), so memory rises until the stream is full and must stay flat after that.")
	} else {
		fmt.Println("On Redis the audit stream lives in redis-server, not in this process.")
	}
	fmt.Println()
}

func printMint(ms []mintResult) {
	fmt.Println("### Credential minting: burst of concurrent calls on a cold cache")
	fmt.Println()
	fmt.Println("| setup | calls | failed | distinct (target, role, policy, identity) | STS AssumeRole calls | max AssumeRole per key | burst wall time s |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, m := range ms {
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %.2f |\n", m.label, m.calls, m.failed, m.keys, m.assumeRoles, m.maxPer, m.elapsed.Seconds())
	}
	fmt.Println()
}

func rateText(r float64) string {
	if r <= 0 {
		return "as fast as they go"
	}
	return fmt.Sprintf("paced at %.0f approvals/s in total", r)
}

func printHeld(o options, hs []heldResult) {
	fmt.Printf("### Calls held for approval at once, then all approved (%d approvers, %s)\n", o.approvers, rateText(o.approveRate))
	fmt.Println()
	fmt.Println("| setup | held | time to hold all s | Airlock process RSS before MiB | RSS with all held MiB | client process RSS MiB | goroutines added | approve-all s | released | failed | release p50 ms | release p99 ms | max ms | p99 from approve call start ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, h := range hs {
		var mx time.Duration
		if len(h.fromCommit) > 0 {
			mx = h.fromCommit[len(h.fromCommit)-1]
		}
		fmt.Printf("| %s | %d | %.1f | %.0f | %.0f | %.0f | %d | %.1f | %d | %d | %s | %s | %s | %s |\n", h.label, h.held, h.holdSecs,
			float64(h.rssBefore)/1024, float64(h.rssHeld)/1024, float64(h.childRSS)/1024, h.goroutines, h.approveSecs, h.released, h.failed,
			ms(pctOf(h.fromCommit, .5)), ms(pctOf(h.fromCommit, .99)), ms(mx), ms(pctOf(h.fromRequest, .99)))
		if h.err != "" {
			fmt.Printf("\nerror: %s\n", h.err)
		}
	}
	fmt.Println()
	fmt.Println("Release latency: from the moment the approval is committed (Workflow.Approve returned, as the approve API does) to the held call's response reaching the client; the last column counts from the start of the approve call. Approve wakes the held call as soon as the grant exists and then writes its audit event, so a call can be released before Approve returns (negative latencies from the commit): the column from the approve call's start is the bound to read. The client runs in a child process; the Airlock process's RSS also holds the small fake upstream and STS (and, with two replicas, both replicas).")
	fmt.Println()
}

// cleanRedis deletes the keys this run wrote under prefix.
func cleanRedis(url, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := redisstore.New(ctx, redisstore.Config{URL: url, KeyPrefix: prefix})
	if err != nil {
		logf("redis clean-up: %v", err)
		return
	}
	defer rs.Close()
	n, err := rs.DeleteAll(ctx)
	if err != nil {
		logf("redis clean-up: %v", err)
		return
	}
	logf("redis clean-up: deleted the run's %d keys under %s*", n, prefix)
}
