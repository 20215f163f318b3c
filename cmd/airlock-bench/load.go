package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// op is one kind of control-plane call of the workload, built the way aws-sdk-go-v2 builds it.
type op struct {
	name    string
	service string
	method  string
	path    string
	query   string
	header  http.Header
	body    []byte
	// s3 calls carry x-amz-content-sha256 (as the SDK's S3 client does); the other services
	// sign the body's hash without sending it.
	s3 bool
}

var workload = []op{
	{name: "ec2:DescribeInstances (query)", service: "ec2", method: "POST", path: "/",
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		body:   []byte("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-state-name&Filter.1.Value.1=running&MaxResults=50")},
	{name: "dynamodb:GetItem (json)", service: "dynamodb", method: "POST", path: "/",
		header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Target": {"DynamoDB_20120810.GetItem"}},
		body:   []byte(`{"TableName":"orders","Key":{"pk":{"S":"order#1234"}},"ConsistentRead":true}`)},
	{name: "s3:GetObject (rest)", service: "s3", method: "GET", path: "/bench/reports/2026/q1.json", query: "x-id=GetObject", s3: true},
	{name: "s3:HeadObject (rest)", service: "s3", method: "HEAD", path: "/bench/reports/2026/q1.json", s3: true},
	{name: "s3:ListObjectsV2 (rest)", service: "s3", method: "GET", path: "/bench", query: "list-type=2&prefix=logs%2F&max-keys=1000", s3: true},
}

// signedClient signs requests the way an SDK would, with one set of credentials.
type signedClient struct {
	http   *http.Client
	base   string // http://host:port of whoever the client talks to
	creds  aws.Credentials
	signer *v4.Signer
}

func newHTTPClient(maxConns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = maxConns
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 15 * time.Minute}
}

func (c *signedClient) request(ctx context.Context, o *op, body io.Reader, contentLength int64, payloadHash string) (*http.Request, error) {
	u := c.base + o.path
	if o.query != "" {
		u += "?" + o.query
	}
	if body == nil && o.body != nil {
		body = strings.NewReader(string(o.body))
		contentLength = int64(len(o.body))
	}
	req, err := http.NewRequestWithContext(ctx, o.method, u, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = contentLength
	for k, v := range o.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/bench")
	if payloadHash == "" {
		s := sha256.Sum256(o.body)
		payloadHash = hex.EncodeToString(s[:])
	}
	if o.s3 {
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	if err := c.signer.SignHTTP(ctx, c.creds, req, payloadHash, o.service, "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	return req, nil
}

// do sends a request and reads the answer to the end.
func (c *signedClient) do(req *http.Request) (int, int64, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, err
}

// loadResult is one mode's measurement.
type loadResult struct {
	mode      string
	calls     int64
	errors    int64
	firstErr  string
	elapsed   time.Duration
	latencies []time.Duration // sorted
	cpu       time.Duration   // user+system of the whole process during the run
	mallocs   uint64          // of the whole process during the run
}

// merge adds another run of the same mode.
func (r loadResult) merge(o loadResult) loadResult {
	r.mode = o.mode
	r.calls += o.calls
	r.errors += o.errors
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.latencies = mergeSorted(r.latencies, o.latencies)
	r.cpu += o.cpu
	r.mallocs += o.mallocs
	return r
}

// mergeSorted adds the samples of another turn to sorted samples, keeping them sorted.
func mergeSorted(into, more []time.Duration) []time.Duration {
	into = append(into, more...)
	slices.Sort(into)
	return into
}

func (r loadResult) throughput() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p+0.999999) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// runLoad runs the workload from conc workers for d (after a warm-up of warm) and measures.
func runLoad(mode string, c *signedClient, conc int, warm, d time.Duration) loadResult {
	ctx := context.Background()
	var stop atomic.Bool
	var firstErr atomic.Value
	var errs atomic.Int64
	var measuring atomic.Bool
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			for i := w; !stop.Load(); i++ {
				o := &workload[i%len(workload)]
				req, err := c.request(ctx, o, nil, 0, "")
				if err != nil {
					panic(err)
				}
				t0 := time.Now()
				status, _, err := c.do(req)
				lat := time.Since(t0)
				if err != nil || status >= 300 {
					errs.Add(1)
					if err == nil {
						err = fmt.Errorf("%s: HTTP %d", o.name, status)
					}
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if measuring.Load() {
					local = append(local, lat)
				}
			}
			lats[w] = local
		}(w)
	}
	time.Sleep(warm)
	errs.Store(0)
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1 := cpuTime()
	runtime.ReadMemStats(&ms1)
	stop.Store(true)
	wg.Wait()
	r := loadResult{mode: mode, elapsed: elapsed, cpu: cpu1 - cpu0, mallocs: ms1.Mallocs - ms0.Mallocs, errors: errs.Load()}
	for _, l := range lats {
		r.latencies = append(r.latencies, l...)
	}
	slices.Sort(r.latencies)
	r.calls = int64(len(r.latencies))
	if e, ok := firstErr.Load().(string); ok {
		r.firstErr = e
	}
	return r
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// plainProxy is the floor for any SigV4 re-signing proxy: it verifies nothing, decides
// nothing, records nothing; it only points the call at the upstream and re-signs it with
// static credentials. Bodies without a declared hash (query and
// JSON protocols) must be hashed to re-sign, as any re-signing proxy must.
func plainProxy(upstream string, creds aws.Credentials) http.Handler {
	u, _ := url.Parse(upstream)
	// The same signer Airlock re-signs with (the SDK's allocates ~10x more), so that the
	// floor is what re-signing itself costs.
	var signer sigv4.Signer
	sc := sigv4.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	return &httputil.ReverseProxy{
		Transport: t,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			out := pr.Out
			out.Host = u.Host
			service, region := scopeOf(pr.In.Header.Get("Authorization"))
			hash := pr.In.Header.Get("X-Amz-Content-Sha256")
			if hash == "" {
				body, _ := io.ReadAll(out.Body)
				s := sha256.Sum256(body)
				hash = hex.EncodeToString(s[:])
				out.Body = io.NopCloser(strings.NewReader(string(body)))
				out.ContentLength = int64(len(body))
			}
			for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
				out.Header.Del(h)
			}
			signer.Sign(out, sc, service, region, hash, time.Now())
		},
	}
}

// scopeOf returns the service and region of a SigV4 Authorization header.
func scopeOf(auth string) (service, region string) {
	_, rest, _ := strings.Cut(auth, "Credential=")
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(scope, "/")
	if len(parts) < 4 {
		return "", ""
	}
	return parts[3], parts[2]
}

type soakSample struct {
	at         time.Duration
	calls      int64
	rssKB      int64
	heap       uint64
	goroutines int
}

// runSoak drives the workload for d and samples memory ten times.
func runSoak(c *signedClient, conc int, d time.Duration) []soakSample {
	ctx := context.Background()
	var stop atomic.Bool
	var calls atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; !stop.Load(); i++ {
				req, err := c.request(ctx, &workload[i%len(workload)], nil, 0, "")
				if err != nil {
					panic(err)
				}
				if status, _, err := c.do(req); err == nil && status < 300 {
					calls.Add(1)
				}
			}
		}(w)
	}
	var samples []soakSample
	t0 := time.Now()
	for i := 1; i <= 10; i++ {
		time.Sleep(d / 10)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, soakSample{at: time.Since(t0), calls: calls.Load(), rssKB: memKB("VmRSS"),
			heap: ms.HeapInuse, goroutines: runtime.NumGoroutine()})
	}
	stop.Store(true)
	wg.Wait()
	return samples
}
