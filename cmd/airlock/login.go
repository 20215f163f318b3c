package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func init() {
	register(command{name: "login", summary: "log in with your company's identity provider (browser, or --device)", run: loginCmd})
	register(command{name: "logout", summary: "revoke and forget the stored login for a server", run: logoutCmd})
}

// openBrowser opens url in the user's browser; tests replace it.
var openBrowser = func(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// loginOptions are the flags of airlock login.
type loginOptions struct {
	server    string
	device    bool
	noBrowser bool
	issuer    string
	clientID  string
	timeout   time.Duration
}

func loginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("login", "login --server URL [--device] [--no-browser] [--issuer URL --client-id ID]", stderr)
	var o loginOptions
	fs.StringVar(&o.server, "server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	fs.BoolVar(&o.device, "device", false, "use the device-code flow: log in on another device (for machines without a browser)")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "do not open a browser; print the login URL to open yourself")
	fs.StringVar(&o.issuer, "issuer", "", "OIDC issuer URL (default: what the server announces)")
	fs.StringVar(&o.clientID, "client-id", "", "OIDC client ID of the CLI (default: what the server announces)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the login to complete")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.server == "" {
		fs.Usage()
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return login(ctx, o, stdout, stderr)
}

// authConfig is GET /api/v1/auth/config.
type authConfig struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// fetchAuthConfig asks the server which provider and client to log in with.
func fetchAuthConfig(ctx context.Context, server string) (authConfig, error) {
	var c authConfig
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, serverKey(server)+"/api/v1/auth/config", nil)
	if err != nil {
		return c, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, fmt.Errorf("reach Airlock: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("%s/api/v1/auth/config: %s (is OIDC configured on the server?)", serverKey(server), resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&c); err != nil {
		return c, fmt.Errorf("%s/api/v1/auth/config: %w", serverKey(server), err)
	}
	return c, nil
}

func login(ctx context.Context, o loginOptions, stdout, stderr io.Writer) error {
	ac := authConfig{Issuer: o.issuer, ClientID: o.clientID}
	if o.issuer == "" || o.clientID == "" {
		fetched, err := fetchAuthConfig(ctx, o.server)
		if err != nil {
			return err
		}
		if ac.Issuer == "" {
			ac.Issuer = fetched.Issuer
		}
		if ac.ClientID == "" {
			ac.ClientID = fetched.ClientID
		}
		ac.Scopes = fetched.Scopes
	}
	if len(ac.Scopes) == 0 {
		ac.Scopes = []string{oidc.ScopeOpenID, "email", "profile", "groups", oidc.ScopeOfflineAccess}
	}
	provider, err := oidc.NewProvider(ctx, ac.Issuer)
	if err != nil {
		return fmt.Errorf("identity provider %s: %w", ac.Issuer, err)
	}
	cfg := &oauth2.Config{ClientID: ac.ClientID, Endpoint: provider.Endpoint(), Scopes: ac.Scopes}

	var tok *oauth2.Token
	var nonce string
	if o.device {
		tok, err = deviceLogin(ctx, cfg, stderr)
	} else {
		tok, nonce, err = browserLogin(ctx, cfg, o.noBrowser, stderr)
	}
	if err != nil {
		return err
	}
	l := &storedLogin{Issuer: ac.Issuer, ClientID: ac.ClientID, Scopes: ac.Scopes}
	if err := l.update(tok); err != nil {
		return err
	}
	claims, _ := peekClaims(l.IDToken)
	if nonce != "" && subtle.ConstantTimeCompare([]byte(claims.Nonce), []byte(nonce)) != 1 {
		return errors.New("the ID token does not carry this login's nonce: try again")
	}
	if err := saveLogin(ctx, o.server, l); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	who := claims.Email
	if who == "" {
		who = claims.Subject
	}
	fmt.Fprintf(stdout, "Logged in to %s as %s", serverKey(o.server), who)
	if len(claims.Groups) > 0 {
		fmt.Fprintf(stdout, " (groups: %s)", strings.Join(claims.Groups, ", "))
	}
	fmt.Fprintln(stdout)
	if l.RefreshToken == "" {
		fmt.Fprintf(stderr, "Note: the provider gave no refresh token; log in again after %s.\n", l.Expiry.Local().Format(time.RFC1123))
	}
	return nil
}

// browserLogin runs the authorization-code flow with PKCE (S256) and a loopback redirect to
// http://127.0.0.1:PORT/callback on a random port.
func browserLogin(ctx context.Context, cfg *oauth2.Config, noBrowser bool, stderr io.Writer) (*oauth2.Token, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen for the login callback: %w", err)
	}
	defer ln.Close()
	cfg.RedirectURL = fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("error") != "":
			res.err = fmt.Errorf("login refused by the identity provider: %s %s", q.Get("error"), q.Get("error_description"))
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			http.Error(w, "this login link is not for this airlock login", http.StatusBadRequest)
			return
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Logged in to Airlock. You can close this tab and return to the terminal."
		if res.err != nil {
			msg = "Login failed: " + res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>Airlock login</title><p id=\"result\">%s</p>\n", html.EscapeString(msg))
		select {
		case done <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if noBrowser {
		fmt.Fprintf(stderr, "Open this URL in a browser on this machine to log in:\n\n  %s\n\n", authURL)
	} else if err := openBrowser(authURL); err != nil {
		fmt.Fprintf(stderr, "Could not open a browser (%v). Open this URL to log in:\n\n  %s\n\n", err, authURL)
	} else {
		fmt.Fprintf(stderr, "Opened your browser to log in. If it did not open, visit:\n\n  %s\n\n", authURL)
	}
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("login not completed: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, "", res.err
	}
	tok, err := cfg.Exchange(ctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, "", fmt.Errorf("exchange the login code: %w", err)
	}
	return tok, nonce, nil
}

// deviceLogin runs the device-authorization flow: the user approves on another device.
func deviceLogin(ctx context.Context, cfg *oauth2.Config, stderr io.Writer) (*oauth2.Token, error) {
	if cfg.Endpoint.DeviceAuthURL == "" {
		return nil, errors.New("the identity provider does not support the device flow; log in without --device")
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the device login: %w", err)
	}
	fmt.Fprintf(stderr, "To log in, open %s on any device and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(stderr, "or open %s\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(stderr, "Waiting for the login to complete...")
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("device login: %w", err)
	}
	return tok, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func logoutCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logout", "logout --server URL", stderr)
	server := fs.String("server", envOr("AIRLOCK_SERVER", ""), "Airlock URL (env AIRLOCK_SERVER)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" {
		fs.Usage()
		return errUsage
	}
	var removed *storedLogin
	err := withTokens(ctx, func(f *tokenFile) (bool, error) {
		removed = f.Servers[serverKey(*server)]
		if removed == nil {
			return false, nil
		}
		delete(f.Servers, serverKey(*server))
		return true, nil
	})
	if err != nil {
		return err
	}
	if removed == nil {
		fmt.Fprintf(stdout, "Not logged in to %s.\n", serverKey(*server))
		return nil
	}
	if err := revoke(ctx, removed); err != nil {
		fmt.Fprintf(stderr, "Warning: could not revoke the refresh token at the identity provider: %v\n", err)
	}
	fmt.Fprintf(stdout, "Logged out of %s.\n", serverKey(*server))
	return nil
}

// revoke revokes the refresh token (RFC 7009) when the provider has a revocation endpoint.
func revoke(ctx context.Context, l *storedLogin) error {
	if l.RefreshToken == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, l.Issuer)
	if err != nil {
		return err
	}
	var ep struct {
		Revocation string `json:"revocation_endpoint"`
	}
	if err := provider.Claims(&ep); err != nil || ep.Revocation == "" {
		return nil // nothing to call: the refresh token ends with its own lifetime
	}
	form := url.Values{"token": {l.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {l.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", ep.Revocation, resp.Status)
	}
	return nil
}
