package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() {
	register(command{name: "exec", summary: "run a tool (aws, gcloud, az, terraform, an SDK program) through Airlock", run: execCmd})
}

const execSynopsis = "exec --target NAME [--server URL] [--reason TEXT] [--mode auto|endpoint|proxy] -- CMD [ARGS...]"

const execHelp = `Runs CMD with the environment that sends its cloud calls through Airlock, and passes its
exit code through. Signals sent to airlock exec are forwarded to CMD.

Modes (--mode):
  endpoint  AWS only: the tool talks to Airlock as its endpoint (AWS_ENDPOINT_URL). The aws CLI
            v2 from Debian (2.9) ignores AWS_ENDPOINT_URL; use proxy mode for it.
  proxy     the tool talks to the real cloud hosts through Airlock's forward proxy
            (HTTPS_PROXY), trusting Airlock's CA. Works for AWS, GCP and Azure.
  auto      proxy when the server runs a forward proxy, else endpoint (the default).

Environment set for CMD:
  all clouds, proxy mode:
    HTTPS_PROXY, https_proxy      the forward proxy (--proxy, else the server's host and the
                                  port it advertises on /api/v1/ca.pem)
    NO_PROXY, no_proxy            the existing value plus the Airlock server's host, localhost
                                  and 127.0.0.1 (the local token servers below)
    SSL_CERT_FILE, AWS_CA_BUNDLE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
    CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE
                                  a temporary bundle: the system roots plus Airlock's CA, so
                                  other TLS still verifies
    NODE_EXTRA_CA_CERTS, AIRLOCK_CA_FILE
                                  Airlock's CA certificate alone
  aws:
    AWS_CONFIG_FILE               a temporary file with profile "airlock" whose
                                  credential_process is 'airlock credentials aws' (the tool
                                  refreshes credentials itself)
    AWS_PROFILE=airlock, AWS_SHARED_CREDENTIALS_FILE (an empty file),
    AWS_EC2_METADATA_DISABLED=true
    AWS_ENDPOINT_URL              the server (endpoint mode only)
    unset: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN,
    AWS_DEFAULT_PROFILE, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_*
    (and AWS_ENDPOINT_URL* in proxy mode)
  gcp (proxy mode):
    GCE_METADATA_HOST, GCE_METADATA_IP, GCE_METADATA_ROOT
                                  a metadata server emulation on 127.0.0.1 serving the
                                  Airlock-issued token (requests need Metadata-Flavor: Google);
                                  it also answers the project ID (--project), the project number
                                  (--project-number, default 0) and the universe domain, which
                                  gcloud reads to recognise a metadata server
    CLOUDSDK_CONFIG               a fresh gcloud config dir, so gcloud uses that server
    GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT  with --project
    unset: GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_AUTH_ACCESS_TOKEN_FILE,
    CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE
  azure (proxy mode):
    IDENTITY_ENDPOINT, IDENTITY_HEADER
                                  an App Service managed-identity endpoint on 127.0.0.1
                                  (api-version 2019-08-01) serving the Airlock-issued token
    MSI_ENDPOINT, MSI_SECRET      the same for tools that speak the 2017-09-01 version
    unset: AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID,
    AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_CERTIFICATE_PASSWORD,
    AZURE_FEDERATED_TOKEN_FILE, AZURE_USERNAME, AZURE_PASSWORD, IDENTITY_SERVER_THUMBPRINT,
    IMDS_ENDPOINT
  always: AIRLOCK_SERVER, AIRLOCK_TARGET (and AIRLOCK_TOKEN when --token is given).

Temporary files live in a private directory removed when CMD exits.

Flags:`

func execCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("exec", execSynopsis, stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: airlock %s\n\n%s\n", execSynopsis, execHelp)
		fs.PrintDefaults()
	}
	o := execOptions{}
	fs.StringVar(&o.server, "server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	fs.StringVar(&o.target, "target", envOr("AIRLOCK_TARGET", ""), "target name from the server's config (env AIRLOCK_TARGET)")
	fs.StringVar(&o.reason, "reason", envOr("AIRLOCK_REASON", ""), "why you need access, e.g. a ticket (env AIRLOCK_REASON)")
	fs.StringVar(&o.token, "token", "", "API token instead of the stored login (env AIRLOCK_TOKEN)")
	fs.StringVar(&o.mode, "mode", "auto", "auto, endpoint or proxy")
	fs.StringVar(&o.cloud, "cloud", "", "the target's cloud (aws, gcp, azure); default: asked from the server")
	fs.StringVar(&o.proxyURL, "proxy", envOr("AIRLOCK_PROXY", ""), "forward proxy URL (env AIRLOCK_PROXY); default: the server's host with the advertised port")
	fs.StringVar(&o.project, "project", envOr("GOOGLE_CLOUD_PROJECT", ""), "gcp: project ID served by the metadata emulation")
	fs.StringVar(&o.projectNumber, "project-number", envOr("AIRLOCK_GCP_PROJECT_NUMBER", ""), "gcp: project number served by the metadata emulation (env AIRLOCK_GCP_PROJECT_NUMBER; default 0: gcloud needs a number there to use the emulation)")
	fs.StringVar(&o.account, "account", "", "gcp: service account email served by the metadata emulation (default: airlock-TARGET@airlock.invalid)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cmdArgs := fs.Args()
	if o.server == "" || o.target == "" || len(cmdArgs) == 0 {
		fs.Usage()
		return errUsage
	}
	o.server = strings.TrimRight(o.server, "/")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	o.self = self
	runCtx := context.WithoutCancel(ctx) // the tool decides when we are done, not our own signals
	env, cleanup, err := prepareExec(runCtx, o, stderr)
	if err != nil {
		return err
	}
	code, err := runChild(cmdArgs, env, stdout, stderr)
	cleanup()
	if err != nil {
		return err
	}
	if code != 0 {
		exitProcess(code)
	}
	return nil
}

// exitProcess passes the tool's exit code on; tests replace it.
var exitProcess = os.Exit

type execOptions struct {
	server, target, reason, token, mode, cloud, proxyURL, project, projectNumber, account, self string
}

// prepareExec checks the target, fetches what the mode needs and returns CMD's environment.
// cleanup stops the local token servers and removes the temporary files.
func prepareExec(ctx context.Context, o execOptions, stderr io.Writer) (env []string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "airlock-exec-")
	if err != nil {
		return nil, nil, err
	}
	var stops []func()
	cleanup = func() {
		for _, s := range stops {
			s()
		}
		_ = os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	// One credential request up front: it finds the target's cloud and fails fast (not logged
	// in, unknown target) before the tool starts.
	tokens := &tokenSource{fetch: func(ctx context.Context, cloud string) ([]byte, error) {
		return requestCredentials(ctx, o.server, o.token, cloud, o.target, o.reason)
	}}
	cloud := o.cloud
	if cloud == "" {
		cloud = "aws"
	}
	if err := tokens.probe(ctx, &cloud, o.cloud == ""); err != nil {
		return nil, nil, err
	}

	mode := o.mode
	var ca *serverCA
	if mode == "auto" || mode == "proxy" {
		ca, err = fetchCA(ctx, o.server)
		switch {
		case err == nil:
			mode = "proxy"
		case mode == "proxy" || cloud != "aws":
			return nil, nil, fmt.Errorf("%s needs Airlock's forward proxy: %w", cloudOrMode(cloud, o.mode), err)
		default:
			mode = "endpoint"
		}
	}
	if mode != "proxy" && mode != "endpoint" {
		return nil, nil, fmt.Errorf("--mode must be auto, endpoint or proxy, not %q", o.mode)
	}
	if mode == "endpoint" && cloud != "aws" {
		return nil, nil, fmt.Errorf("airlock exec runs %s tools in proxy mode only", cloud)
	}

	e := newEnvList(os.Environ())
	e.set("AIRLOCK_SERVER", o.server)
	e.set("AIRLOCK_TARGET", o.target)
	if o.token != "" {
		e.set("AIRLOCK_TOKEN", o.token) // credential_process runs as the tool's child
	}
	if mode == "proxy" {
		if err := proxyEnv(e, o, ca, dir, stderr); err != nil {
			return nil, nil, err
		}
	}
	switch cloud {
	case "aws":
		err = awsEnv(e, o, mode, dir)
	case "gcp":
		var stop func()
		stop, err = gcpEnv(e, o, tokens, dir)
		stops = append(stops, stop)
	case "azure":
		var stop func()
		stop, err = azureEnv(e, tokens)
		stops = append(stops, stop)
	}
	if err != nil {
		return nil, nil, err
	}
	return e.list(), cleanup, nil
}

func cloudOrMode(cloud, mode string) string {
	if cloud != "aws" {
		return cloud + " through airlock exec"
	}
	return "--mode " + mode
}

func proxyEnv(e *envList, o execOptions, ca *serverCA, dir string, stderr io.Writer) error {
	srv, err := url.Parse(o.server)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	proxyURL := o.proxyURL
	if proxyURL == "" {
		if ca.proxyPort == "" {
			return errors.New("the server does not say where its forward proxy listens: pass --proxy URL")
		}
		proxyURL = "http://" + net.JoinHostPort(srv.Hostname(), ca.proxyPort)
	}
	caFile := filepath.Join(dir, "airlock-ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		return err
	}
	bundle := filepath.Join(dir, "ca-bundle.pem")
	roots := systemRoots()
	if roots == nil {
		fmt.Fprintln(stderr, "airlock exec: no system CA bundle found; the CA bundle holds only Airlock's CA")
	}
	if err := os.WriteFile(bundle, append(append(roots, '\n'), ca.pem...), 0o600); err != nil {
		return err
	}
	for _, k := range []string{"HTTPS_PROXY", "https_proxy"} {
		e.set(k, proxyURL)
	}
	noProxy := strings.Join(nonEmpty(e.get("NO_PROXY"), e.get("no_proxy"), srv.Hostname(), "localhost", "127.0.0.1"), ",")
	e.set("NO_PROXY", noProxy)
	e.set("no_proxy", noProxy)
	for _, k := range []string{"SSL_CERT_FILE", "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE"} {
		e.set(k, bundle)
	}
	e.set("NODE_EXTRA_CA_CERTS", caFile)
	e.set("AIRLOCK_CA_FILE", caFile)
	return nil
}

// systemRoots reads the system's CA bundle (the first that exists), so that the bundle handed
// to tools keeps every other TLS connection verifiable.
func systemRoots() []byte {
	candidates := []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem", "/etc/pki/tls/cacert.pem", "/etc/ssl/cert.pem"}
	for _, f := range candidates {
		if f == "" {
			continue
		}
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			return b
		}
	}
	return nil
}

func awsEnv(e *envList, o execOptions, mode, dir string) error {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
		"AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
		e.unset(k)
	}
	cmd := []string{shellQuote(o.self), "credentials", "aws", "--server", shellQuote(o.server), "--target", shellQuote(o.target)}
	if o.reason != "" {
		cmd = append(cmd, "--reason", shellQuote(o.reason))
	}
	cfgFile := filepath.Join(dir, "aws-config")
	profile := "[profile airlock]\ncredential_process = " + strings.Join(cmd, " ") + "\n"
	if err := os.WriteFile(cfgFile, []byte(profile), 0o600); err != nil {
		return err
	}
	credsFile := filepath.Join(dir, "aws-credentials")
	if err := os.WriteFile(credsFile, nil, 0o600); err != nil {
		return err
	}
	e.set("AWS_CONFIG_FILE", cfgFile)
	e.set("AWS_SHARED_CREDENTIALS_FILE", credsFile)
	e.set("AWS_PROFILE", "airlock")
	e.set("AWS_EC2_METADATA_DISABLED", "true")
	if mode == "endpoint" {
		e.set("AWS_ENDPOINT_URL", o.server)
		return nil
	}
	for _, k := range e.keys() {
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL") {
			e.unset(k) // the tool must talk to the real hosts, which the proxy intercepts
		}
	}
	return nil
}

// shellQuote quotes s for credential_process, which the aws CLI splits like a POSIX shell
// and the Go SDK runs with sh -c.
func shellQuote(s string) string {
	if s != "" && regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func nonEmpty(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v = strings.Trim(v, ", "); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// runChild runs the tool with signals forwarded and returns its exit code (128+signal when a
// signal ended it, as shells report it).
func runChild(args, env []string, stdout, stderr io.Writer) (int, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run %s: %w", args[0], err)
	}
	// Ctrl-C at a terminal reaches the whole foreground process group, the tool included: sending
	// it again would be a second interrupt (terraform and others force-quit on that).
	interactive := isTerminal(os.Stdin)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGINT && interactive {
					continue
				}
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// envList edits an environment, keeping its order.
type envList struct {
	kv map[string]string
	ks []string
}

func newEnvList(environ []string) *envList {
	e := &envList{kv: map[string]string{}}
	for _, s := range environ {
		k, v, _ := strings.Cut(s, "=")
		e.set(k, v)
	}
	return e
}

func (e *envList) set(k, v string) {
	if _, ok := e.kv[k]; !ok {
		e.ks = append(e.ks, k)
	}
	e.kv[k] = v
}

func (e *envList) get(k string) string { return e.kv[k] }

func (e *envList) unset(k string) { delete(e.kv, k) }

func (e *envList) keys() []string {
	var out []string
	for _, k := range e.ks {
		if _, ok := e.kv[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

func (e *envList) list() []string {
	var out []string
	for _, k := range e.keys() {
		out = append(out, k+"="+e.kv[k])
	}
	return out
}

// tokenSource hands out the Airlock-issued bearer for GCP/Azure, fetching a new one when the
// cached one has less than five minutes left.
type tokenSource struct {
	fetch func(ctx context.Context, cloud string) ([]byte, error)
	cloud string

	mu      sync.Mutex
	token   string
	expires time.Time
}

var wrongCloud = regexp.MustCompile(`is an? (aws|gcp|azure) target, not`)

// probe asks for a credential of *cloud; when detect is set and the server says the target is
// of another cloud, it switches to that cloud.
func (t *tokenSource) probe(ctx context.Context, cloud *string, detect bool) error {
	body, err := t.fetch(ctx, *cloud)
	if err != nil && detect {
		if m := wrongCloud.FindStringSubmatch(err.Error()); m != nil {
			*cloud = m[1]
			body, err = t.fetch(ctx, *cloud)
		}
	}
	if err != nil {
		return err
	}
	t.cloud = *cloud
	if *cloud != "aws" {
		return t.store(body)
	}
	return nil
}

func (t *tokenSource) store(body []byte) error {
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   int64  `json:"expires_on"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return errors.New("unexpected token answer from Airlock")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.token, t.expires = tok.AccessToken, time.Unix(tok.ExpiresOn, 0)
	return nil
}

// Token returns a token with at least five minutes left.
func (t *tokenSource) Token(ctx context.Context) (string, time.Time, error) {
	t.mu.Lock()
	tok, exp := t.token, t.expires
	t.mu.Unlock()
	if tok != "" && time.Until(exp) > 5*time.Minute {
		return tok, exp, nil
	}
	body, err := t.fetch(ctx, t.cloud)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := t.store(body); err != nil {
		return "", time.Time{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.token, t.expires, nil
}

// serveLocal serves h on a loopback port until stop.
func serveLocal(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
