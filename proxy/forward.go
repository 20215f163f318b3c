package proxy

// Forward mode (HTTPS_PROXY=http://airlock:8443). This is the one file that uses goproxy: it
// answers CONNECT, tunnels or refuses the hosts Airlock does not intercept, and hands the
// connections it intercepts to a net/http server of its own, so the calls inside the TLS
// session reach the very same pipeline as endpoint mode. No goproxy type leaves this file.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/airlockhq/airlock/catalog/awscat"
	"github.com/airlockhq/airlock/catalog/gcpcat"
	"github.com/airlockhq/airlock/config"
)

// ForwardConfig wires forward mode. Cloud is the pipeline (the *Proxy of endpoint mode): it
// gets SigV4 calls as they are, and bearer calls (GCP, Azure) in endpoint mode's path shape.
type ForwardConfig struct {
	Settings *config.Config
	Logger   *slog.Logger
	CA       *CA
	Cloud    http.Handler
	// Dial reaches the hosts that other_hosts: passthrough tunnels to; nil is a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Forward is the forward-proxy handler; serve it on forward_proxy.listen.
type Forward struct {
	cfg       ForwardConfig
	gp        *goproxy.ProxyHttpServer
	inner     *http.Server
	conns     *connListener
	innerDone chan struct{}
}

// cloud hosts that are token endpoints, not control plane: Airlock does not intercept them
// (they follow other_hosts). Tools get their tokens from Airlock (airlock exec), and a tool that
// tries to log in to the cloud itself is refused by default rather than silently bypassing it.
var tokenHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.windows.net": true,
	"oauth2.googleapis.com": true, "accounts.google.com": true, "sts.googleapis.com": true,
}

// interceptedCloud says whether Airlock intercepts host (no port) and for which cloud: AWS
// endpoints from the AWS endpoints table, Google API hosts from the discovery catalog, and
// Azure Resource Manager. This is the forward-mode allowlist.
func interceptedCloud(host string) (string, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if tokenHosts[host] {
		return "", false
	}
	if _, _, ok := awscat.ServiceForHost(host); ok {
		return "aws", true
	}
	if _, ok := gcpcat.ServiceForHost(host); ok {
		return "gcp", true
	}
	if host == "management.azure.com" {
		return "azure", true
	}
	return "", false
}

// NewForward builds the forward-proxy handler.
func NewForward(cfg ForwardConfig) (*Forward, error) {
	if cfg.Settings == nil || cfg.Logger == nil || cfg.CA == nil || cfg.Cloud == nil {
		return nil, errors.New("proxy: ForwardConfig needs Settings, Logger, CA and Cloud")
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	f := &Forward{cfg: cfg, conns: newConnListener(), innerDone: make(chan struct{})}

	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{cfg.Logger}
	// Passthrough dials directly: never through the server's own HTTPS_PROXY, never with
	// certificate checks turned off.
	gp.ConnectDial = nil
	gp.Tr = &http.Transport{DialContext: cfg.Dial, ResponseHeaderTimeout: 5 * time.Minute}
	gp.OnRequest().HandleConnectFunc(f.connect)
	f.gp = gp

	f.inner = &http.Server{
		Handler:           http.HandlerFunc(f.serveIntercepted),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if ic, ok := tc.NetConn().(*interceptedConn); ok {
					return withForwardHost(ctx, ic.host)
				}
			}
			return ctx
		},
	}
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			// The CONNECT host decides the certificate, whatever the SNI says: it is the host
			// that was checked against the allowlist.
			ic, ok := hello.Conn.(*interceptedConn)
			if !ok {
				return nil, errors.New("not an intercepted connection")
			}
			return cfg.CA.Leaf(ic.host)
		},
	}
	go func() {
		defer close(f.innerDone)
		_ = f.inner.Serve(tls.NewListener(f.conns, tlsConf))
	}()
	return f, nil
}

// ServeHTTP answers proxy requests: CONNECT (intercept, tunnel or refuse) and plain-HTTP
// absolute-form requests (handled when allowlisted, else passed through or refused).
func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		f.gp.ServeHTTP(w, r)
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "This is Airlock's forward proxy: set HTTPS_PROXY to it (airlock exec does), or use the Airlock API at "+f.cfg.Settings.PublicURL, http.StatusBadRequest)
		return
	}
	host, port := splitHostPortDefault(r.URL.Host, "80")
	if _, ok := interceptedCloud(host); ok && r.URL.Scheme == "http" && port == "80" && f.cfg.CA.Covers(host) {
		r.Host = r.URL.Host
		f.serveCloud(w, r.WithContext(withForwardHost(r.Context(), strings.ToLower(host))))
		return
	}
	if f.cfg.Settings.Forward.OtherHosts == "passthrough" {
		f.gp.ServeHTTP(w, r)
		return
	}
	f.cfg.Logger.Info("forward proxy refused a host", "host", r.URL.Host, "client_ip", clientIP(r))
	http.Error(w, refusedHostMessage(r.URL.Host), http.StatusForbidden)
}

// Close stops serving intercepted connections, letting calls in flight finish until ctx ends.
func (f *Forward) Close(ctx context.Context) error {
	f.conns.Close()
	err := f.inner.Shutdown(ctx)
	<-f.innerDone
	return err
}

func refusedHostMessage(host string) string {
	return fmt.Sprintf("Airlock refuses %s: it is not a cloud control-plane host that Airlock intercepts, and forward_proxy.other_hosts is \"refuse\". "+
		"Set NO_PROXY for it, or ask the Airlock operator for other_hosts: passthrough.\n", host)
}

// connect decides a CONNECT: intercept the allowlisted cloud hosts on 443, tunnel or refuse
// the rest.
func (f *Forward) connect(hostport string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	host, port := splitHostPortDefault(hostport, "443")
	if _, ok := interceptedCloud(host); ok && port == "443" && f.cfg.CA.Covers(host) {
		h := strings.ToLower(host)
		return &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: func(req *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
			f.intercept(req, client, h)
		}}, hostport
	}
	if f.cfg.Settings.Forward.OtherHosts == "passthrough" {
		return &goproxy.ConnectAction{Action: goproxy.ConnectAccept}, hostport
	}
	msg := refusedHostMessage(hostport)
	if _, ok := interceptedCloud(host); ok {
		msg = fmt.Sprintf("Airlock intercepts %s only on port 443\n", host)
	}
	f.cfg.Logger.Info("forward proxy refused a CONNECT", "host", hostport, "client_ip", clientIP(ctx.Req))
	ctx.Resp = &http.Response{
		StatusCode: http.StatusForbidden, Status: "403 Forbidden", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Connection": {"close"}},
		Body:          io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)), Close: true, Request: ctx.Req,
	}
	return &goproxy.ConnectAction{Action: goproxy.ConnectReject}, hostport
}

// intercept completes the CONNECT and hands the client connection to the inner server, which
// does the TLS handshake with a leaf certificate for host.
func (f *Forward) intercept(req *http.Request, client net.Conn, host string) {
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = client.Close()
		return
	}
	if !f.conns.push(&interceptedConn{Conn: client, host: host}) {
		_ = client.Close()
	}
}

// serveIntercepted receives the calls inside an intercepted TLS session.
func (f *Forward) serveIntercepted(w http.ResponseWriter, r *http.Request) {
	host, _ := forwardHost(r.Context())
	if !strings.EqualFold(stripPort(r.Host), host) {
		// The signature covers Host and the upstream is derived from it: it must be the host
		// that was allowlisted at CONNECT.
		http.Error(w, fmt.Sprintf("Host %q does not match the tunnel's host %q", r.Host, host), http.StatusMisdirectedRequest)
		return
	}
	f.serveCloud(w, r)
}

// serveCloud hands an intercepted call to the pipeline. Only calls signed with Airlock-issued
// credentials go on; anything else is refused here in the cloud's own format.
func (f *Forward) serveCloud(w http.ResponseWriter, r *http.Request) {
	host, _ := forwardHost(r.Context())
	cloud, _ := interceptedCloud(host)
	switch {
	case cloud == "aws" && IsAWSRequest(r):
		f.cfg.Cloud.ServeHTTP(w, r)
	case cloud != "aws" && IsBearerRequest(r) && !IsAWSRequest(r):
		// Endpoint mode addresses Google APIs as /gcp/{host}/... and ARM as /azure/...; the
		// host here is the allowlisted one the client connected to.
		prefix := azurePathPrefix
		if cloud == "gcp" {
			prefix = gcpPathPrefix + host
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = prefix + r.URL.Path
		if r.URL.RawPath != "" {
			r2.URL.RawPath = prefix + r.URL.RawPath
		}
		f.cfg.Cloud.ServeHTTP(w, r2)
	default:
		f.refuseUnsigned(w, r, cloud)
	}
}

func (f *Forward) refuseUnsigned(w http.ResponseWriter, r *http.Request, cloud string) {
	id := newRequestID()
	f.cfg.Logger.Info("forward proxy refused a call without Airlock credentials", "request_id", id, "host", r.Host, "cloud", cloud, "client_ip", clientIP(r))
	switch cloud {
	case "aws":
		writeAWSError(w, guessAWSProtocol(r, "", ""), id, &cloudError{Status: http.StatusForbidden, Code: "InvalidClientTokenId",
			Message: "Airlock forwards only calls signed with Airlock-issued credentials (airlock exec, or credential_process = airlock credentials aws) (request ID " + id + ")"})
	case "gcp":
		writeForwardJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "status": "UNAUTHENTICATED",
			"message": "Airlock forwards only calls carrying an Airlock-issued token (airlock exec, or airlock credentials gcp) (request ID " + id + ")"}})
	default:
		writeForwardJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": "InvalidAuthenticationToken",
			"message": "Airlock forwards only calls carrying an Airlock-issued token (airlock exec, or airlock credentials azure) (request ID " + id + ")"}})
	}
}

func writeForwardJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func splitHostPortDefault(hostport, def string) (string, string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return hostport, def
}

// interceptedConn is a client connection after CONNECT, remembering the host it asked for.
type interceptedConn struct {
	net.Conn
	host string
}

// connListener is a net.Listener fed with intercepted connections, for the inner server.
type connListener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// goproxyLogger sends goproxy's messages (connection errors of tunnels) to the debug log.
type goproxyLogger struct{ l *slog.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	g.l.Debug("forward proxy: " + fmt.Sprintf(format, v...))
}

type forwardHostKey struct{}

// withForwardHost marks a call as arriving in forward mode for host, an allowlisted cloud host.
func withForwardHost(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, forwardHostKey{}, host)
}

// forwardHost returns the allowlisted host a forward-mode call was sent to.
func forwardHost(ctx context.Context) (string, bool) {
	h, ok := ctx.Value(forwardHostKey{}).(string)
	return h, ok
}
