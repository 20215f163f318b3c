package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The CLI's logins live in os.UserConfigDir()/airlock/tokens.json (directory 0700, file 0600),
// one entry per Airlock server URL. An entry holds the ID token that API calls carry and the
// refresh token that renews it silently; nothing else on the laptop is long-lived.

// storedLogin is one server's login.
type storedLogin struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	Scopes       []string  `json:"scopes,omitempty"`
	IDToken      string    `json:"id_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"` // the ID token's exp
}

type tokenFile struct {
	Servers map[string]*storedLogin `json:"servers"`
}

// tokenNow is the CLI's clock; tests move it forward to force a refresh.
var tokenNow = time.Now

// refreshMargin is how long before its expiry an ID token is renewed.
const refreshMargin = 5 * time.Minute

var errNotLoggedIn = errors.New("not logged in")

// serverKey normalizes a server URL so that "https://a/" and "https://a" share a login.
func serverKey(server string) string { return strings.TrimRight(strings.TrimSpace(server), "/") }

func tokensPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for stored logins: %w", err)
	}
	return filepath.Join(dir, "airlock", "tokens.json"), nil
}

func readTokens(path string) (*tokenFile, error) {
	f := &tokenFile{Servers: map[string]*storedLogin{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): delete it and log in again", path, err)
	}
	if f.Servers == nil {
		f.Servers = map[string]*storedLogin{}
	}
	return f, nil
}

// writeTokens replaces the file atomically, owner-only.
func writeTokens(path string, f *tokenFile) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// withTokens runs fn on the token file under a lock, and writes the file back when fn reports
// a change. The lock keeps concurrent credential_process runs from refreshing with the same
// (single-use) refresh token at once.
func withTokens(ctx context.Context, fn func(f *tokenFile) (changed bool, err error)) error {
	path, err := tokensPath()
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	f, err := readTokens(path)
	if err != nil {
		return err
	}
	changed, err := fn(f)
	if changed {
		if werr := writeTokens(path, f); werr != nil {
			return errors.Join(err, fmt.Errorf("save login: %w", werr))
		}
	}
	return err
}

// lockFile takes an exclusive lock by creating path. A lock older than 90s (longer than a
// refresh may take) was left by a crashed process and is broken.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > 90*time.Second {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// saveLogin stores the login for server.
func saveLogin(ctx context.Context, server string, l *storedLogin) error {
	return withTokens(ctx, func(f *tokenFile) (bool, error) {
		f.Servers[serverKey(server)] = l
		return true, nil
	})
}

// loadToken returns a fresh ID token for server, renewing it with the refresh token when it is
// within refreshMargin of its expiry. Other commands call it before each API call.
func loadToken(ctx context.Context, server string) (string, error) {
	var token string
	err := withTokens(ctx, func(f *tokenFile) (bool, error) {
		l := f.Servers[serverKey(server)]
		if l == nil || l.IDToken == "" {
			return false, fmt.Errorf("%w to %s", errNotLoggedIn, serverKey(server))
		}
		if tokenNow().Add(refreshMargin).Before(l.Expiry) {
			token = l.IDToken
			return false, nil
		}
		if l.RefreshToken == "" {
			return false, fmt.Errorf("login to %s expired at %s", serverKey(server), l.Expiry.Local().Format(time.RFC1123))
		}
		if err := refreshLogin(ctx, l); err != nil {
			return false, fmt.Errorf("login to %s expired and could not be renewed: %w", serverKey(server), err)
		}
		token = l.IDToken
		return true, nil
	})
	return token, err
}

// refreshLogin renews l's ID token with the refresh_token grant.
func refreshLogin(ctx context.Context, l *storedLogin) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, l.Issuer)
	if err != nil {
		return err
	}
	cfg := &oauth2.Config{ClientID: l.ClientID, Endpoint: provider.Endpoint(), Scopes: l.Scopes}
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: l.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return err
	}
	return l.update(tok)
}

// update takes the ID token (and a rotated refresh token) from a token response.
func (l *storedLogin) update(tok *oauth2.Token) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return errors.New("the identity provider returned no ID token")
	}
	claims, err := peekClaims(raw)
	if err != nil {
		return err
	}
	l.IDToken = raw
	l.Expiry = time.Unix(claims.Expiry, 0)
	if tok.RefreshToken != "" {
		l.RefreshToken = tok.RefreshToken
	}
	return nil
}

// idClaims are the ID token claims the CLI reads. The CLI does not verify the token: it got it
// straight from the provider over TLS, and Airlock verifies it on every call.
type idClaims struct {
	Subject string   `json:"sub"`
	Email   string   `json:"email"`
	Groups  []string `json:"groups"`
	Nonce   string   `json:"nonce"`
	Expiry  int64    `json:"exp"`
}

func peekClaims(raw string) (idClaims, error) {
	var c idClaims
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return c, errors.New("the identity provider returned a malformed ID token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil || c.Expiry == 0 {
		return c, errors.New("the identity provider returned a malformed ID token")
	}
	return c, nil
}
