package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
)

// ---- 64 MiB transfers ----

// patternReader yields n bytes without holding them in memory.
type patternReader struct{ left int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), r.left)], fillChunk)
	r.left -= int64(n)
	return n, nil
}

type transferResult struct {
	mode                 string
	putSecs, getSecs     float64
	putGrowth, getGrowth int64 // peak RSS growth (bytes) during each transfer
	putOK, getOK         bool
	err                  string
}

// memKB reads VmRSS or VmHWM (kB) of this process.
func memKB(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// resetPeak makes VmHWM start again from the current RSS (Linux clear_refs "5").
func resetPeak() {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func runTransfers(mode string, c *signedClient, up *fakeAWS) transferResult {
	ctx := context.Background()
	res := transferResult{mode: mode}
	put := op{name: "s3:PutObject", service: "s3", method: "PUT", path: "/bench/big", query: "x-id=PutObject", s3: true,
		header: map[string][]string{"Content-Type": {"application/octet-stream"}}}
	get := op{name: "s3:GetObject", service: "s3", method: "GET", path: "/bench/big", query: "x-id=GetObject", s3: true}

	before := up.putBytes.Load()
	resetPeak()
	base := memKB("VmRSS")
	t0 := time.Now()
	req, err := c.request(ctx, &put, &patternReader{left: bigObjectSize}, bigObjectSize, "UNSIGNED-PAYLOAD")
	if err == nil {
		var status int
		status, _, err = c.do(req)
		if err == nil && status != 200 {
			err = fmt.Errorf("PutObject: HTTP %d", status)
		}
	}
	res.putSecs = time.Since(t0).Seconds()
	res.putGrowth = (memKB("VmHWM") - base) * 1024
	res.putOK = err == nil && up.putBytes.Load()-before == bigObjectSize
	if err != nil {
		res.err = err.Error()
	}

	resetPeak()
	base = memKB("VmRSS")
	t0 = time.Now()
	req, err = c.request(ctx, &get, nil, 0, "")
	var n int64
	if err == nil {
		var status int
		status, n, err = c.do(req)
		if err == nil && status != 200 {
			err = fmt.Errorf("GetObject: HTTP %d", status)
		}
	}
	res.getSecs = time.Since(t0).Seconds()
	res.getGrowth = (memKB("VmHWM") - base) * 1024
	res.getOK = err == nil && n == bigObjectSize
	if err != nil && res.err == "" {
		res.err = err.Error()
	}
	return res
}

// ---- credential minting burst ----

type mintResult struct {
	label            string
	calls, failed    int
	keys             int // distinct (role, session, policy) the calls need
	assumeRoles      int64
	distinct, maxPer int
	elapsed          time.Duration
}

// runMintBurst sends calls concurrent calls to cold instances (round robin over them), spread
// over identities distinct identities, all for the same action, and counts AssumeRole calls.
func runMintBurst(label string, instances []*airlockInstance, sts *fakeSTS, calls, identities int) mintResult {
	sts.reset()
	ctx := context.Background()
	httpc := newHTTPClient(calls)
	clients := make([]*signedClient, 0, identities*len(instances))
	for i := 0; i < identities; i++ {
		id := authn.Identity{Subject: fmt.Sprintf("burst-%d", i), Email: fmt.Sprintf("burst-%d@example.com", i), Groups: []string{"engineers"}}
		creds, err := instances[0].issuer.IssueAWS(id, "bench", "mint burst")
		if err != nil {
			panic(err)
		}
		for _, inst := range instances {
			clients = append(clients, &signedClient{http: httpc, base: inst.URL, signer: v4.NewSigner(),
				creds: aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}})
		}
	}
	o := &workload[2] // s3:GetObject on one object
	reqs := make([]*burstReq, calls)
	for i := range reqs {
		c := clients[i%len(clients)]
		req, err := c.request(ctx, o, nil, 0, "")
		if err != nil {
			panic(err)
		}
		reqs[i] = &burstReq{c: c, req: req}
	}
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if status, _, err := r.c.do(r.req); err != nil || status != 200 {
				failed.Add(1)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	distinct, maxPer := sts.perKey()
	return mintResult{label: label, calls: calls, failed: int(failed.Load()), keys: identities,
		assumeRoles: sts.total.Load(), distinct: distinct, maxPer: maxPer, elapsed: time.Since(t0)}
}

type burstReq struct {
	c   *signedClient
	req *http.Request
}

// ---- held calls ----

type heldResult struct {
	label                   string
	childRSS                int64 // kB, the client process
	n                       int
	held                    int64
	holdSecs                float64
	rssBefore, rssHeld      int64 // kB
	goroutines              int
	released, failed        int
	approveSecs             float64
	fromCommit, fromRequest []time.Duration // sorted release latencies
	err                     string
}

// runHeld holds n calls on holdOn, approves them all on approveOn, and measures. With a
// profile directory, the approve-and-release part is profiled (startProfiles) into it.
func runHeld(label string, holdOn, approveOn *airlockInstance, n, approvers int, rate float64, profile string) heldResult {
	ctx := context.Background()
	res := heldResult{label: label, n: n}
	alice := authn.Identity{Subject: "alice", Email: "alice@example.com", Groups: []string{"engineers"}}
	bob := authn.Identity{Subject: "bob", Email: "bob@example.com", Groups: []string{"sre-leads"}}
	creds, err := holdOn.issuer.IssueAWS(alice, "bench-held", "held-calls benchmark")
	if err != nil {
		panic(err)
	}
	c := &signedClient{http: newHTTPClient(n), base: holdOn.URL, signer: v4.NewSigner(),
		creds: aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}}
	// Warm the credential cache of the held target (one mint) so release measures release.
	warm := op{service: "s3", method: "GET", path: "/bench/reports/2026/q1.json", s3: true}
	if req, err := c.request(ctx, &warm, nil, 0, ""); err == nil {
		_, _, _ = c.do(req)
	}

	runtime.GC()
	res.rssBefore = memKB("VmRSS")
	g0 := runtime.NumGoroutine()
	// The client runs in a child process: one process cannot hold both ends of 10,000
	// connections under this machine's file limit, and the RSS measured here is then Airlock's
	// (with the small upstream and STS), not the client's.
	done := make([]int64, n) // unix nanos when the response arrived
	status := make([]int, n)
	child := exec.Command(os.Args[0], "-held-client", holdOn.URL, "-held", strconv.Itoa(n))
	child.Env = append(os.Environ(), "AIRLOCK_BENCH_HELD_AK="+creds.AccessKeyID,
		"AIRLOCK_BENCH_HELD_SK="+creds.SecretAccessKey, "AIRLOCK_BENCH_HELD_TOKEN="+creds.SessionToken)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		panic(err)
	}
	t0 := time.Now()
	if err := child.Start(); err != nil {
		res.err = err.Error()
		return res
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var i, s int
			var at int64
			if _, err := fmt.Sscanf(sc.Text(), "done %d %d %d", &i, &at, &s); err == nil && i >= 0 && i < n {
				done[i], status[i] = at, s
			}
		}
		_ = child.Wait()
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for holdOn.holds.holds.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res.held = holdOn.holds.holds.Load()
	res.holdSecs = time.Since(t0).Seconds()
	time.Sleep(time.Second) // let the last waiters subscribe and settle
	runtime.GC()
	res.rssHeld = memKB("VmRSS")
	res.goroutines = runtime.NumGoroutine() - g0
	res.childRSS = childRSS(child.Process.Pid)

	reqs, err := approveOn.workflow.List(ctx, string(approval.StatePending), bob)
	if err != nil {
		res.err = err.Error()
		return res
	}
	slices.Reverse(reqs) // oldest first
	approveStart := make([]int64, n)
	approveCommit := make([]int64, n)
	next := atomic.Int64{}
	var awg sync.WaitGroup
	stopProfiles := func() {}
	if profile != "" {
		if stopProfiles, err = startProfiles(profile); err != nil {
			res.err = err.Error()
			return res
		}
	}
	a0 := time.Now()
	// With a rate, approvals are paced (as people approve): release latency is then the
	// mechanism's, not the queue of thousands of approvals landing in the same instant.
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	for w := 0; w < approvers; w++ {
		awg.Add(1)
		go func() {
			defer awg.Done()
			for {
				if tick != nil {
					<-tick
				}
				k := int(next.Add(1)) - 1
				if k >= len(reqs) {
					return
				}
				r := reqs[k]
				_, idx, ok := strings.Cut(r.Action.Resource, "held/")
				i, err := strconv.Atoi(idx)
				if !ok || err != nil || i >= n {
					continue
				}
				approveStart[i] = time.Now().UnixNano()
				if _, err := approveOn.workflow.Approve(ctx, r.ID, bob, "bench"); err != nil {
					continue
				}
				approveCommit[i] = time.Now().UnixNano()
			}
		}()
	}
	awg.Wait()
	res.approveSecs = time.Since(a0).Seconds()
	wg.Wait()
	stopProfiles()
	for i := 0; i < n; i++ {
		if status[i] == 204 && approveCommit[i] != 0 {
			res.released++
			res.fromCommit = append(res.fromCommit, time.Duration(done[i]-approveCommit[i]))
			res.fromRequest = append(res.fromRequest, time.Duration(done[i]-approveStart[i]))
		} else {
			res.failed++
		}
	}
	slices.Sort(res.fromCommit)
	slices.Sort(res.fromRequest)
	return res
}

// heldClient is the child process of runHeld: it sends n held calls at once to url and prints
// "done INDEX UNIXNANO STATUS" as each answer arrives.
func heldClient(url string, n int) error {
	raiseFileLimit(uint64(n + 1024))
	ctx := context.Background()
	c := &signedClient{http: newHTTPClient(n), base: url, signer: v4.NewSigner(), creds: aws.Credentials{
		AccessKeyID: os.Getenv("AIRLOCK_BENCH_HELD_AK"), SecretAccessKey: os.Getenv("AIRLOCK_BENCH_HELD_SK"),
		SessionToken: os.Getenv("AIRLOCK_BENCH_HELD_TOKEN")}}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		o := op{service: "s3", method: "DELETE", path: fmt.Sprintf("/bench/held/%d", i), query: "x-id=DeleteObject", s3: true}
		req, err := c.request(ctx, &o, nil, 0, "")
		if err != nil {
			return err
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, _, err := c.do(req)
			at := time.Now().UnixNano()
			if err != nil {
				s = -1
			}
			mu.Lock()
			fmt.Fprintf(w, "done %d %d %d\n", i, at, s)
			w.Flush()
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return nil
}

func childRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// raiseFileLimit lets one process hold both ends of 10,000+ connections.
func raiseFileLimit(n uint64) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur >= n {
		return
	}
	want := syscall.Rlimit{Cur: n, Max: max(n, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
}

func pctOf(s []time.Duration, p float64) time.Duration {
	return loadResult{latencies: s}.pct(p)
}
