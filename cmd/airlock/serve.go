package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/api/option"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog/awscat"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/proxy"
	"github.com/airlockhq/airlock/signer"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
	redisstore "github.com/airlockhq/airlock/store/redis"
)

func init() {
	register(command{name: "serve", summary: "run the proxy, API and approval pages", run: serveCmd})
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [--config FILE]", stderr)
	path := fs.String("config", envOr("AIRLOCK_CONFIG", ""), "config file (YAML); none = development defaults on the in-memory store (env AIRLOCK_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)
	srv, err := newServer(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.ListenAndServe(ctx)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is everything `airlock serve` runs, wired in pipeline order.
type server struct {
	cfg     *config.Config
	logger  *slog.Logger
	store   store.Store
	audit   *audit.Log
	handler http.Handler
	closers []func()
	// brokerHooks replace the GCP and Azure brokers' base identity and transport (tests).
	brokerHooks brokerHooks
	// forward is forward-proxy mode on forwardLn, when forward_proxy.enabled.
	forward   *proxy.Forward
	forwardLn net.Listener
}

func newServer(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...serverOption) (*server, error) {
	s := &server{cfg: cfg, logger: logger}
	for _, o := range opts {
		o(s)
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	// Store: the embedded memory store by default, Redis one setting away.
	storeKey, err := s.openStore(ctx)
	if err != nil {
		return nil, err
	}

	webhook := audit.WebhookConfig{URL: cfg.Audit.Webhook.URL, BatchSize: cfg.Audit.Webhook.BatchSize,
		Interval: cfg.Audit.Webhook.Interval.D(), MaxBuffer: cfg.Audit.Webhook.MaxBuffer}
	if webhook.Token, err = config.Secret(cfg.Audit.Webhook.TokenEnv); err != nil {
		return nil, fmt.Errorf("audit.webhook.token_env: %w", err)
	}
	auditLog, err := audit.NewLog(ctx, audit.LogConfig{
		Store: s.store, Stream: auditStream(cfg), StreamMaxLen: cfg.Audit.StreamMaxLen,
		File: cfg.Audit.File, FileMaxBytes: cfg.Audit.FileMaxBytes, FileSync: cfg.Audit.Fsync,
		Stdout:  stdoutSink(cfg.Audit.Stdout),
		Webhook: webhook,
		Replica: replicaName(), Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s.audit = auditLog
	s.closers = append(s.closers, func() { _ = auditLog.Close() })

	// Identity: credentials Airlock issues, verified statelessly from a shared signing key.
	signingKey, err := keyOrRandom(cfg.Creds.SigningKeyEnv)
	if err != nil {
		return nil, fmt.Errorf("credentials.signing_key_env: %w", err)
	}
	if cfg.Creds.SigningKeyEnv == "" {
		logger.Warn("credentials.signing_key_env is not set: client credentials are signed with a random key and stop working when this process restarts; set it (and share it between replicas) in production")
	}
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Key: signingKey, TTL: cfg.Creds.TTL.D()})
	if err != nil {
		return nil, err
	}
	verifier, err := authn.NewSigV4Verifier(authn.SigV4Config{Issuer: issuer})
	if err != nil {
		return nil, err
	}
	apiAuth, sessions, oidcProvider, err := s.identity(ctx, storeKey)
	if err != nil {
		return nil, err
	}

	// Decisions.
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	notifier, err := approval.NewWebhooks(cfg.Notify, approval.WebhookOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = notifier.Close() })
	workflow, err := approval.NewWorkflow(approval.WorkflowConfig{
		Store: s.store, Wait: cfg.Hold.Wait.D(), RequestTTL: cfg.Hold.RequestTTL.D(), PublicURL: cfg.PublicURL,
		Auditor: auditLog, Notifier: notifier, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	janitorDone := make(chan struct{})
	go func() { _ = workflow.Run(runCtx); close(janitorDone) }()
	s.closers = append(s.closers, func() { stop(); <-janitorDone; _ = workflow.Close() })

	// Credentials Airlock mints from the clouds.
	awsBroker, err := signer.NewAWSBroker(signer.AWSBrokerConfig{BrokerConfig: signer.BrokerConfig{Store: s.store, Key: storeKey, Logger: logger}})
	if err != nil {
		return nil, err
	}

	// Load the catalog now rather than on the first call: no request pays for decoding it.
	awscat.Lookup("s3:GetObject")

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := proxy.NewMetrics()
	registry.MustRegister(metrics.Collectors()...)
	registry.MustRegister(auditLog.Collectors()...)
	registry.MustRegister(brokerCollectors("aws", awsBroker)...)
	gcpBroker, azureBroker, err := s.tokenBrokers(storeKey)
	if err != nil {
		return nil, err
	}
	for cloud, b := range map[string]tokenBroker{"gcp": gcpBroker, "azure": azureBroker} {
		if b != nil {
			registry.MustRegister(brokerCollectors(cloud, b)...)
		}
	}

	awsProxy, err := proxy.New(proxy.Config{
		Settings: cfg, Logger: logger, SigV4: verifier, Policy: engine, Approvals: workflow,
		AWS: awsBroker, Audit: auditLog, Metrics: metrics,
		Bearer: issuer, GCP: gcpBroker, Azure: azureBroker,
	})
	if err != nil {
		return nil, err
	}
	api, err := proxy.NewAPI(proxy.APIConfig{
		Settings: cfg, Logger: logger, Auth: apiAuth, Issuer: issuer, Audit: auditLog, Store: s.store,
		Registry: registry, Ready: auditReady(auditLog),
	})
	if err != nil {
		return nil, err
	}
	if err := s.mountWeb(api, apiAuth, sessions, oidcProvider, workflow); err != nil {
		return nil, err
	}
	if err := s.setupForward(ctx, storeKey, awsProxy, api); err != nil {
		return nil, err
	}
	s.handler = proxy.Router(awsProxy, api)
	ok = true
	return s, nil
}

// openStore connects the store and returns the key that encrypts cached cloud secrets.
func (s *server) openStore(ctx context.Context) ([]byte, error) {
	if s.cfg.Redis.URL == "" {
		s.store = memory.New(nil)
		s.logger.Info("using the embedded in-memory store: single replica, pending requests, grants and cached credentials are lost on restart; set redis.url (or AIRLOCK_REDIS_URL) to use Redis")
		key, err := keyOrRandom(s.cfg.Redis.EncryptionKeyEnv)
		return key, err
	}
	if s.cfg.Redis.EncryptionKeyEnv == "" {
		return nil, errors.New("redis.encryption_key_env is required with Redis: cached cloud credentials are encrypted before they reach it (generate one with: openssl rand -base64 32)")
	}
	key, err := config.Key32(s.cfg.Redis.EncryptionKeyEnv)
	if err != nil {
		return nil, fmt.Errorf("redis.encryption_key_env: %w", err)
	}
	rs, err := redisstore.New(ctx, redisstore.Config{URL: s.cfg.Redis.URL, KeyPrefix: s.cfg.Redis.KeyPrefix})
	if err != nil {
		return nil, err
	}
	s.store = rs
	s.logger.Info("using Redis store", "redis", redactURL(s.cfg.Redis.URL))
	return key, nil
}

// identity builds the API authenticator: OIDC when configured, the development bootstrap token
// when asked for, and browser sessions for the pages. storeKey seals the provider's refresh
// tokens that sessions keep, like the cached cloud secrets.
func (s *server) identity(ctx context.Context, storeKey []byte) (*authn.APIAuthenticator, *authn.Sessions, *authn.OIDC, error) {
	var oidc *authn.OIDC
	var sessions *authn.Sessions
	ac := authn.APIAuthenticatorConfig{Dev: s.cfg.Dev, Store: s.store, Auditor: s.audit, Logger: s.logger}
	if s.cfg.OIDC.Issuer != "" {
		oc, err := authn.OIDCConfigFrom(s.cfg.OIDC, s.cfg.PublicURL)
		if err != nil {
			return nil, nil, nil, err
		}
		oidc, err = authn.NewOIDC(ctx, oc)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("oidc: %w", err)
		}
		sessions, err = authn.NewSessions(ctx, authn.SessionsConfig{OIDC: oidc, Store: s.store, PublicURL: s.cfg.PublicURL, Auditor: s.audit, Logger: s.logger,
			TTL: s.cfg.OIDC.SessionTTL.D(), GroupsRefresh: s.cfg.OIDC.GroupsRefresh.D(), TokenKey: storeKey})
		if err != nil {
			return nil, nil, nil, err
		}
		ac.Verifier, ac.Sessions = oidc, sessions
		s.logger.Info("OIDC login enabled", "issuer", s.cfg.OIDC.Issuer)
	} else {
		s.logger.Warn("no oidc issuer configured: nobody can log in; set oidc.issuer (or dev.bootstrap_token_env for local development)")
	}
	if authn.BootstrapEnabled(s.cfg.Dev) {
		s.logger.Warn("DEVELOPMENT bootstrap token enabled: anyone holding it acts as "+s.cfg.Dev.BootstrapIdentity.Email+"; never enable dev.bootstrap_token_env in production", "env", s.cfg.Dev.BootstrapTokenEnv)
	}
	a, err := authn.NewAPIAuthenticator(ac)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, sessions, oidc, nil
}

// ListenAndServe serves until ctx ends, then drains for up to 30 s.
func (s *server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *server) Serve(ctx context.Context, ln net.Listener) error {
	// Long-lived requests (live pages, the audit stream, held calls) see their context end when
	// shutdown begins, instead of holding it for the whole drain period.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: held calls wait and large objects stream for as long as they need.
		ErrorLog:    slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return baseCtx },
	}
	hs.RegisterOnShutdown(cancelBase)
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS.CertFile != "" {
			errc <- hs.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	s.logger.Info("airlock serving", "listen", ln.Addr().String(), "public_url", s.cfg.PublicURL,
		"config", orNone(s.cfg.Source), "targets", len(s.cfg.Targets), "policies", len(s.cfg.Policies))
	stopForward := s.serveForward(errc)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopForward(shutdownCtx)
	return hs.Shutdown(shutdownCtx)
}

// Close releases what newServer opened, in reverse order.
func (s *server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.store != nil {
		_ = s.store.Close()
	}
}

// auditStream is the audit stream's name inside the store. The Redis store prefixes every key
// with redis.key_prefix, so a configured "airlock:audit" must not become "airlock:airlock:audit":
// the stream is then readable under exactly the configured name with XRANGE.
func auditStream(cfg *config.Config) string {
	name := cfg.Audit.RedisStream
	if name == "" {
		name = "airlock:audit"
	}
	if cfg.Redis.URL != "" {
		name = strings.TrimPrefix(name, cfg.Redis.KeyPrefix)
	}
	return name
}

// auditReady makes /readyz report audit sink trouble (a failing SIEM webhook, a recent primary
// sink failure) without ever blocking calls on it.
func auditReady(l *audit.Log) func(context.Context) error {
	return func(context.Context) error {
		if p := l.Health().Problems(time.Now()); len(p) > 0 {
			return errors.New(strings.Join(p, "; "))
		}
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none: development defaults)"
	}
	return s
}

func keyOrRandom(env string) ([]byte, error) {
	if env != "" {
		return config.Key32(env)
	}
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

func stdoutSink(on bool) io.Writer {
	if on {
		return os.Stdout
	}
	return nil
}

func replicaName() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// redactURL drops the password from a Redis URL for logs.
func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at > 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			return u[:scheme+3] + "***" + u[at:]
		}
	}
	return u
}

func brokerCollectors(cloud string, b interface{ Stats() (mints, hits uint64) }) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "airlock_credential_mints_total",
			Help: "Cloud credentials minted (STS AssumeRole, GCP service account impersonation, Azure token requests).", ConstLabels: prometheus.Labels{"cloud": cloud}},
			func() float64 { m, _ := b.Stats(); return float64(m) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "airlock_credential_cache_hits_total",
			Help: "Credential requests answered from the cache or a shared mint.", ConstLabels: prometheus.Labels{"cloud": cloud}},
			func() float64 { _, h := b.Stats(); return float64(h) }),
	}
}

// serverOption adjusts a server before it is wired (tests inject the brokers' base identity).
type serverOption func(*server)

// brokerHooks are what tests replace to mint against fakes: the GCP base identity (default:
// Application Default Credentials) and the HTTP client that reaches Azure AD (default: azcore's).
type brokerHooks struct {
	gcpClientOptions []option.ClientOption
	azureHTTPClient  *http.Client
}

// tokenBroker is the GCP and the Azure broker as the proxy and the metrics see them.
type tokenBroker interface {
	Token(ctx context.Context, t *config.Target) (string, time.Time, error)
	Stats() (mints, hits uint64)
}

// tokenBrokers creates the GCP and Azure brokers, each only when a target of its cloud exists:
// a proxy without GCP targets never looks for Google credentials. A nil broker is a nil
// interface, which the proxy takes as "none".
func (s *server) tokenBrokers(storeKey []byte) (gcp, azure tokenBroker, err error) {
	var hasGCP, hasAzure bool
	for _, t := range s.cfg.Targets {
		hasGCP = hasGCP || t.Cloud == "gcp"
		hasAzure = hasAzure || t.Cloud == "azure"
	}
	if hasGCP {
		// The base identity is resolved on the first mint, so serve starts without it.
		b, err := signer.NewGCPBroker(signer.GCPBrokerConfig{BrokerConfig: signer.BrokerConfig{Store: s.store, Key: storeKey, Logger: s.logger}, ClientOptions: s.brokerHooks.gcpClientOptions})
		if err != nil {
			return nil, nil, fmt.Errorf("gcp broker: %w", err)
		}
		s.closers = append(s.closers, func() { _ = b.Close() })
		gcp = b
	}
	if hasAzure {
		b, err := signer.NewAzureBroker(signer.AzureBrokerConfig{BrokerConfig: signer.BrokerConfig{Store: s.store, Key: storeKey, Logger: s.logger}, HTTPClient: s.brokerHooks.azureHTTPClient})
		if err != nil {
			return nil, nil, fmt.Errorf("azure broker: %w", err)
		}
		azure = b
	}
	return gcp, azure, nil
}
