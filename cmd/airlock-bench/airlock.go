package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/proxy"
	"github.com/airlockhq/airlock/signer"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

// Environment the Airlock instances read their secrets from (by *_env indirection, as in a
// real config). Set by main before any instance starts.
const (
	envBaseAccessKey = "AIRLOCK_BENCH_BASE_ACCESS_KEY"
	envBaseSecretKey = "AIRLOCK_BENCH_BASE_SECRET_KEY"
	envStoreKey      = "AIRLOCK_BENCH_STORE_KEY"
	envSigningKey    = "AIRLOCK_BENCH_SIGNING_KEY"
)

// airlockOptions say what kind of Airlock instance to start.
type airlockOptions struct {
	upstreamURL, stsURL string
	redisURL            string // "" = in-memory store
	keyPrefix           string // Redis key prefix; replicas of one run share it
	dir                 string // audit file directory
	name                string
}

// airlockInstance is one Airlock replica wired the way `airlock serve` wires it (store, audit
// log with file and stream, issuer, SigV4 verifier, policy engine, approval workflow, AWS
// broker, proxy behind the router), minus OIDC and the web pages, which allowed calls never
// touch.
type airlockInstance struct {
	URL      string
	cfg      *config.Config
	store    store.Store
	audit    *audit.Log
	issuer   *authn.Issuer
	workflow *approval.Workflow
	broker   *signer.AWSBroker
	holds    *countingAuditor
	srv      *http.Server
	closers  []func()
}

// countingAuditor counts hold decisions so the held-calls run knows when every call waits, and,
// while timing is on, how long each decision event took to record: the durable commit that
// sits on every call's path before it is forwarded.
type countingAuditor struct {
	next   *audit.Log
	holds  atomic.Int64
	timing atomic.Bool
	mu     sync.Mutex
	times  []time.Duration // guarded by mu
}

func (a *countingAuditor) Record(ctx context.Context, e *audit.Event) error {
	timed := e.Kind == audit.KindDecision && a.timing.Load()
	var start time.Time
	if timed {
		start = time.Now()
	}
	err := a.next.Record(ctx, e)
	if timed {
		d := time.Since(start)
		a.mu.Lock()
		a.times = append(a.times, d)
		a.mu.Unlock()
	}
	if err == nil && e.Kind == audit.KindDecision && e.Decision == "hold" {
		a.holds.Add(1)
	}
	return err
}

// startTiming starts collecting decision commit times afresh.
func (a *countingAuditor) startTiming() {
	a.mu.Lock()
	a.times = a.times[:0]
	a.mu.Unlock()
	a.timing.Store(true)
}

// stopTiming stops collecting and returns the times collected, sorted.
func (a *countingAuditor) stopTiming() []time.Duration {
	a.timing.Store(false)
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.times)
	slices.Sort(out)
	return out
}

const benchPolicies = `
policies:
  - name: deletes-need-sre
    actions: ["s3:DeleteObject"]
    decision: hold
    approvers: {groups: [sre-leads]}
    grant: {ttl: 1h, uses: 1}
  - name: reads-and-writes-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
`

func benchConfig(o airlockOptions, listen string) (*config.Config, error) {
	target := func(name string, extra string) string {
		return fmt.Sprintf(`  - name: %s
    cloud: aws
    role_arn: arn:aws:iam::111122223333:role/airlock-bench
    regions: [us-east-1]
    endpoint: %s
    sts_endpoint: %s
    base_credentials: {access_key_id_env: %s, secret_access_key_env: %s}
%s`, name, o.upstreamURL, o.stsURL, envBaseAccessKey, envBaseSecretKey, extra)
	}
	y := "listen: " + listen + "\npublic_url: http://" + listen + "\n"
	if o.redisURL != "" {
		y += fmt.Sprintf("redis: {url: %q, encryption_key_env: %s, key_prefix: %q}\n", o.redisURL, envStoreKey, o.keyPrefix)
	}
	y += "credentials: {signing_key_env: " + envSigningKey + "}\n"
	// bench-held shares one STS session per identity (no per-call session policy), so that
	// 10,000 held calls on 10,000 objects measure holding and release, not 10,000 mints.
	y += "targets:\n" + target("bench", "") + target("bench-held", "    session_policy: false\n")
	y += benchPolicies
	y += "hold: {wait: 5m, request_ttl: 1h}\n"
	y += "audit: {file: " + filepath.Join(o.dir, o.name+"-audit.jsonl") + ", redis_stream: airlock:audit}\n"
	return config.Parse([]byte(y))
}

// startAirlock starts one instance on a loopback port.
func startAirlock(ctx context.Context, o airlockOptions) (*airlockInstance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg, err := benchConfig(o, ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("bench config: %w", err)
	}
	a := &airlockInstance{URL: "http://" + ln.Addr().String(), cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			ln.Close()
			a.Close()
		}
	}()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	storeKey, err := config.Key32(envStoreKey)
	if err != nil {
		return nil, err
	}
	if o.redisURL == "" {
		a.store = memory.New(nil)
	} else {
		rs, err := redisstore.New(ctx, redisstore.Config{URL: o.redisURL, KeyPrefix: cfg.Redis.KeyPrefix})
		if err != nil {
			return nil, err
		}
		a.store = rs
	}
	a.closers = append(a.closers, func() { _ = a.store.Close() })

	a.audit, err = audit.NewLog(ctx, audit.LogConfig{Store: a.store, Stream: cfg.Audit.RedisStream,
		File: cfg.Audit.File, Replica: o.name, Logger: logger})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = a.audit.Close() })
	a.holds = &countingAuditor{next: a.audit}

	signingKey, err := config.Key32(envSigningKey)
	if err != nil {
		return nil, err
	}
	if a.issuer, err = authn.NewIssuer(authn.IssuerConfig{Key: signingKey}); err != nil {
		return nil, err
	}
	verifier, err := authn.NewSigV4Verifier(authn.SigV4Config{Issuer: a.issuer})
	if err != nil {
		return nil, err
	}
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	a.workflow, err = approval.NewWorkflow(approval.WorkflowConfig{Store: a.store, Wait: cfg.Hold.Wait.D(),
		RequestTTL: cfg.Hold.RequestTTL.D(), PublicURL: cfg.PublicURL, Auditor: a.audit, Logger: logger})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = a.workflow.Run(runCtx); close(done) }()
	a.closers = append(a.closers, func() { stop(); <-done; _ = a.workflow.Close() })

	a.broker, err = signer.NewAWSBroker(signer.AWSBrokerConfig{BrokerConfig: signer.BrokerConfig{Store: a.store, Key: storeKey, Logger: logger}})
	if err != nil {
		return nil, err
	}
	px, err := proxy.New(proxy.Config{Settings: cfg, Logger: logger, SigV4: verifier, Policy: engine,
		Approvals: a.workflow, AWS: a.broker, Audit: a.holds})
	if err != nil {
		return nil, err
	}
	a.srv = &http.Server{Handler: proxy.Router(px, http.NotFoundHandler()), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go a.srv.Serve(ln)
	ok = true
	return a, nil
}

func (a *airlockInstance) Close() {
	if a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.srv.Shutdown(ctx)
		cancel()
		a.srv.Close()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// setBenchEnv puts the secrets the instances read into the environment.
func setBenchEnv(base struct{ id, secret string }) {
	os.Setenv(envBaseAccessKey, base.id)
	os.Setenv(envBaseSecretKey, base.secret)
	os.Setenv(envStoreKey, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	os.Setenv(envSigningKey, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
}
