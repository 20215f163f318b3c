package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/proxy"
)

func init() {
	register(command{name: "ca", summary: "export the forward-proxy CA certificate (PEM) for clients' trust stores", run: caCmd})
}

func caCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(stderr, "Usage: airlock ca export --server URL [--out FILE]")
		return errUsage
	}
	fs := newFlagSet("ca export", "ca export --server URL [--out FILE]", stderr)
	server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	out := fs.String("out", "", "write the PEM to FILE instead of stdout")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *server == "" {
		fs.Usage()
		return errUsage
	}
	ca, err := fetchCA(ctx, *server)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s\nSHA-256 fingerprint %s\n", ca.cert.Subject.CommonName, fingerprint(ca.cert))
	if *out != "" {
		return os.WriteFile(*out, ca.pem, 0o644)
	}
	_, err = stdout.Write(ca.pem)
	return err
}

// serverCA is the forward-proxy CA as the server publishes it.
type serverCA struct {
	pem  []byte
	cert *x509.Certificate
	// proxyPort is the forward proxy's port next to the server ("" when not advertised).
	proxyPort string
}

// fetchCA downloads GET /api/v1/ca.pem (no login needed: the certificate is public).
func fetchCA(ctx context.Context, server string) (*serverCA, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/api/v1/ca.pem", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach Airlock: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the CA certificate: %s", apiErrorMessage(resp.StatusCode, body))
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the server's /api/v1/ca.pem is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		return nil, errors.New("the server's /api/v1/ca.pem is not a CA certificate")
	}
	return &serverCA{pem: body, cert: cert, proxyPort: resp.Header.Get(proxy.ForwardPortHeader)}, nil
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// setupForward loads (or creates) the CA and binds the forward-proxy listener when
// forward_proxy.enabled; the CA certificate is served at GET /api/v1/ca.pem either way.
func (s *server) setupForward(ctx context.Context, storeKey []byte, cloud http.Handler, api *proxy.API) error {
	if !s.cfg.Forward.Enabled {
		api.Handle("GET /api/v1/ca.pem", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"forward_proxy_disabled","message":"this Airlock does not run forward-proxy mode (forward_proxy.enabled is false), so it has no CA"}`+"\n")
		}))
		return nil
	}
	ca, err := proxy.LoadOrCreateCA(ctx, proxy.CAConfig{Store: s.store, Key: storeKey, Logger: s.logger})
	if err != nil {
		return fmt.Errorf("forward_proxy: %w", err)
	}
	if s.cfg.Redis.URL == "" {
		s.logger.Warn("forward proxy CA lives in the in-memory store: a new CA is made at every start and clients must fetch it again; use Redis to keep it")
	}
	ln, err := net.Listen("tcp", s.cfg.Forward.Listen)
	if err != nil {
		return fmt.Errorf("forward_proxy.listen: %w", err)
	}
	s.closers = append(s.closers, func() { _ = ln.Close() })
	fwd, err := proxy.NewForward(proxy.ForwardConfig{Settings: s.cfg, Logger: s.logger, CA: ca, Cloud: cloud})
	if err != nil {
		return err
	}
	s.forward, s.forwardLn = fwd, ln
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = fwd.Close(ctx)
	})
	api.Handle("GET /api/v1/ca.pem", ca.Handler(ln.Addr().String()))
	s.logger.Info("forward proxy CA", "subject", ca.Certificate().Subject.CommonName, "sha256", ca.Fingerprint(),
		"not_after", ca.Certificate().NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// serveForward serves the forward proxy until the returned stop is called.
func (s *server) serveForward(errc chan<- error) (stop func(context.Context)) {
	if s.forward == nil {
		return func(context.Context) {}
	}
	fs := &http.Server{
		Handler:           s.forward,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := fs.Serve(s.forwardLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("forward proxy: %w", err):
			default:
			}
		}
	}()
	s.logger.Info("forward proxy serving", "listen", s.forwardLn.Addr().String(), "other_hosts", s.cfg.Forward.OtherHosts)
	return func(ctx context.Context) {
		_ = fs.Shutdown(ctx)
		_ = s.forward.Close(ctx)
	}
}
