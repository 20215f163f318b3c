package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Refreshing a browser session's groups at the provider.
//
// The provider rotates refresh tokens and refuses one that was used before, so a session's token
// must be used by one request at a time across every replica: singleflight joins the requests of
// one process, and a lock in the store (SetNX with a TTL) joins the replicas. A replica that loses
// the lock waits briefly for the winner's record; it never sends the token itself, so a loser can
// never be refused and end a session that the winner just refreshed. Every write of the record
// is a compare-and-set on the sealed token it started from, for the case of a lock that expired
// under a very slow refresh.

const (
	// refreshTimeout bounds one refresh at the provider (its HTTP client has its own timeout).
	refreshTimeout = 15 * time.Second
	// refreshLockTTL outlasts refreshTimeout, so that no second refresh of the same token starts
	// while the first may still be in flight; it also bounds how long a replica that died
	// mid-refresh holds the others off.
	refreshLockTTL = 30 * time.Second
	// refreshWait is how long a request waits for another replica's refresh before it is
	// treated as logged out.
	refreshWait    = 5 * time.Second
	refreshPollMin = 20 * time.Millisecond
	refreshPollMax = 250 * time.Millisecond
	// refreshRetryAfter: once the provider could not answer a session's refresh, that session
	// is not refreshed again for this long; its requests meanwhile are treated as logged out at
	// once, instead of each waiting for the provider's timeout (up to refreshTimeout).
	refreshRetryAfter = 30 * time.Second
	// maxRetryEntries bounds the sessions remembered as waiting to retry (expired ones go first).
	maxRetryEntries = 10_000
)

// refreshFlight joins the requests of one process that find the same stale session, and
// remembers which sessions' refreshes failed because the provider could not answer.
type refreshFlight struct {
	group singleflight.Group

	mu    sync.Mutex
	retry map[string]time.Time // session key -> no refresh before
}

// waiting reports until when the session under key must not be refreshed, if it must not now.
func (f *refreshFlight) waiting(key string, now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.retry[key]
	if ok && !now.Before(until) {
		delete(f.retry, key)
		return time.Time{}, false
	}
	return until, ok
}

// failed notes that the provider could not answer the session's refresh at now.
func (f *refreshFlight) failed(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.retry == nil {
		f.retry = map[string]time.Time{}
	}
	if len(f.retry) >= maxRetryEntries {
		for k, until := range f.retry {
			if !now.Before(until) {
				delete(f.retry, k)
			}
		}
		if len(f.retry) >= maxRetryEntries {
			return // a provider outage across this many sessions: they retry at their own pace
		}
	}
	f.retry[key] = now.Add(refreshRetryAfter)
}

type refreshResult struct {
	rec sessionRecord
	ok  bool
}

var (
	errSessionGone  = errors.New("session ended or expired meanwhile")
	errSessionMoved = errors.New("session refreshed by another request meanwhile")
	errLockNotOurs  = errors.New("refresh lock held by another request")
)

// refreshSession brings rec's email and groups up to date at the provider and returns the record
// to trust for this request; ok is false when there is none (see the package's session notes).
func (s *Sessions) refreshSession(r *http.Request, key string, rec sessionRecord) (sessionRecord, bool) {
	if len(rec.Refresh) == 0 {
		s.cfg.Logger.Info("browser session needs a new login: its groups are older than oidc.groups_refresh and the provider gave no refresh token at login",
			"identity", rec.identity())
		return sessionRecord{}, false
	}
	if until, ok := s.refresh.waiting(key, s.cfg.Now()); ok {
		s.cfg.Logger.Debug("browser session treated as logged out for this request: the identity provider could not refresh its groups just now",
			"identity", rec.identity(), "retry_after", until.UTC().Format(time.RFC3339))
		return sessionRecord{}, false
	}
	ch := s.refresh.group.DoChan(key, func() (any, error) {
		// The shared work outlives any one caller: a caller that gives up must not fail the
		// others, nor leave a rotated token unstored.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), refreshTimeout)
		defer cancel()
		rec, ok := s.refreshOnce(ctx, r, key)
		return refreshResult{rec, ok}, nil
	})
	select {
	case <-r.Context().Done():
		return sessionRecord{}, false
	case res := <-ch:
		out := res.Val.(refreshResult)
		return out.rec, out.ok
	}
}

// refreshOnce refreshes the session under key while holding its lock in the store, or waits for
// the replica that holds it.
func (s *Sessions) refreshOnce(ctx context.Context, r *http.Request, key string) (sessionRecord, bool) {
	lock := key + ":refresh-lock"
	token := randomBytes(16)
	deadline := time.Now().Add(refreshWait)
	wait := refreshPollMin
	for {
		rec, ok := s.read(ctx, key)
		if !ok {
			return sessionRecord{}, false // ended (logout, or a refusal seen by another replica) or expired
		}
		if !s.stale(rec) {
			return rec, true // another replica refreshed it
		}
		won, err := s.cfg.Store.SetNX(ctx, lock, token, refreshLockTTL)
		if err != nil {
			s.cfg.Logger.Error("browser session treated as logged out for this request: cannot take its refresh lock",
				"identity", rec.identity(), "err", err)
			return sessionRecord{}, false
		}
		if won {
			defer s.unlockRefresh(ctx, lock, token)
			// Another replica may have refreshed the session, and released the lock, between
			// the read above and taking the lock: read it again under the lock, or this
			// request would send a refresh token the provider has already rotated away.
			if rec, ok = s.read(ctx, key); !ok || !s.stale(rec) {
				return rec, ok
			}
			return s.refreshGroups(ctx, r, key, rec)
		}
		if time.Now().Add(wait).After(deadline) {
			s.cfg.Logger.Warn("browser session treated as logged out for this request: another replica is still refreshing its groups",
				"identity", rec.identity())
			return sessionRecord{}, false
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return sessionRecord{}, false
		case <-t.C:
		}
		wait = min(wait*2, refreshPollMax)
	}
}

// unlockRefresh deletes the lock only if it is still ours: after a slow refresh it may have
// expired and been taken by another replica.
func (s *Sessions) unlockRefresh(ctx context.Context, lock string, token []byte) {
	err := s.cfg.Store.Update(ctx, lock, func(old []byte) ([]byte, time.Duration, error) {
		if !bytes.Equal(old, token) {
			return nil, 0, errLockNotOurs
		}
		return nil, 0, nil
	})
	if err != nil && !errors.Is(err, errLockNotOurs) {
		s.cfg.Logger.Warn("could not release a session refresh lock; it expires by itself", "err", err)
	}
}

// refreshGroups asks the provider for a new ID token with rec's refresh token and stores what it
// says. A refusal ends the session; a provider that cannot answer now leaves it as it is.
func (s *Sessions) refreshGroups(ctx context.Context, r *http.Request, key string, rec sessionRecord) (sessionRecord, bool) {
	refreshToken, err := s.openRefresh(key, rec.Refresh)
	if err != nil {
		return s.endSession(ctx, r, key, rec, "its stored refresh token does not decrypt (was the key rotated?)")
	}
	tok, err := s.oauth.TokenSource(s.cfg.OIDC.httpContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && refusal(re.Response.StatusCode) {
			return s.endSession(ctx, r, key, rec, fmt.Sprintf(
				"the identity provider refused to refresh it (%s): the user was removed or disabled, or the grant was revoked", oauthErrorName(re)))
		}
		s.refresh.failed(key, s.cfg.Now())
		return s.untrusted(rec, "the identity provider cannot refresh its groups now", providerError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return s.endSession(ctx, r, key, rec, "the identity provider's refresh answer carried no ID token, so its groups cannot be checked")
	}
	id, _, err := s.cfg.OIDC.verify(ctx, raw)
	if errors.Is(err, ErrBadSignature) {
		// The provider's own answer over its token endpoint: a key set that could not be
		// fetched just now is far likelier than a forgery, and nothing from this token is used.
		s.refresh.failed(key, s.cfg.Now())
		return s.untrusted(rec, "the refreshed ID token cannot be verified now", err.Error())
	}
	if err != nil {
		return s.endSession(ctx, r, key, rec, "the refreshed ID token was refused: "+err.Error())
	}
	if id.Subject != rec.Subject {
		return s.endSession(ctx, r, key, rec, "the refreshed ID token names another subject")
	}

	next := rec
	next.Email, next.Groups, next.Checked = id.Email, slices.Clone(id.Groups), s.cfg.Now().UTC()
	if tok.RefreshToken != "" {
		next.Refresh = s.sealRefresh(key, tok.RefreshToken)
	}
	data, err := json.Marshal(next)
	if err != nil {
		return s.untrusted(rec, "cannot encode the refreshed session", err.Error())
	}
	// The record keeps its expiry: refreshing groups never extends a session.
	err = s.replaceSession(ctx, key, rec.Refresh, data, next.Expires)
	switch {
	case errors.Is(err, errSessionGone):
		return sessionRecord{}, false
	case errors.Is(err, errSessionMoved):
		return s.readFresh(ctx, key)
	case err != nil:
		// The provider has just vouched for next, so it is this request's identity. The record
		// still holds the token the provider has rotated away, so the next request's refresh is
		// refused and ends the session: a new login, never stale groups.
		s.cfg.Logger.Error("cannot store a refreshed browser session", "identity", next.identity(), "err", err)
	}
	if next.Email != rec.Email || !sameGroups(next.Groups, rec.Groups) {
		s.cfg.Logger.Info("browser session groups changed at the identity provider", "identity", next.identity(),
			"groups", next.Groups, "previous_groups", rec.Groups)
		// A refresh that cannot be recorded still takes effect: the record now holds what the
		// provider says, and every approval is recorded with the groups it was made with.
		_ = s.recordWithReason(ctx, r, next.identity(), StepSessionRefresh, "groups refreshed at the identity provider; before: "+describeGroups(rec))
	}
	return next, true
}

// endSession deletes the session under key, unless another request has refreshed it meanwhile,
// and records why.
func (s *Sessions) endSession(ctx context.Context, r *http.Request, key string, rec sessionRecord, why string) (sessionRecord, bool) {
	err := s.replaceSession(ctx, key, rec.Refresh, nil, rec.Expires)
	switch {
	case errors.Is(err, errSessionGone):
		return sessionRecord{}, false
	case errors.Is(err, errSessionMoved):
		return s.readFresh(ctx, key)
	case err != nil:
		s.cfg.Logger.Error("browser session treated as logged out for this request: cannot delete it", "identity", rec.identity(),
			"reason", why, "err", err)
		return sessionRecord{}, false
	}
	s.cfg.Logger.Warn("browser session ended: "+why, "identity", rec.identity())
	_ = s.recordWithReason(ctx, r, rec.identity(), StepLogout, "session ended: "+why)
	return sessionRecord{}, false
}

// untrusted logs why the session cannot be used for this request; the session is kept.
func (s *Sessions) untrusted(rec sessionRecord, why, detail string) (sessionRecord, bool) {
	s.cfg.Logger.Warn("browser session treated as logged out for this request: "+why, "identity", rec.identity(), "err", detail)
	return sessionRecord{}, false
}

// readFresh returns the record under key when another request has just refreshed it.
func (s *Sessions) readFresh(ctx context.Context, key string) (sessionRecord, bool) {
	rec, ok := s.read(ctx, key)
	if !ok || s.stale(rec) {
		return sessionRecord{}, false
	}
	return rec, true
}

// replaceSession stores data (nil: deletes the session) under key until expires, if the record
// there still holds the sealed refresh token from: else errSessionGone or errSessionMoved.
func (s *Sessions) replaceSession(ctx context.Context, key string, from, data []byte, expires time.Time) error {
	return s.cfg.Store.Update(ctx, key, func(old []byte) ([]byte, time.Duration, error) {
		if err := sameRefresh(old, from); err != nil {
			return nil, 0, err
		}
		if data == nil {
			return nil, 0, nil
		}
		ttl := expires.Sub(s.cfg.Now())
		if ttl <= 0 {
			return nil, 0, errSessionGone
		}
		return data, ttl, nil
	})
}

// sameRefresh checks that the stored record old still holds the sealed refresh token this
// request started from. Sealing is randomised, so equal bytes mean the same write.
func sameRefresh(old, sealed []byte) error {
	var cur sessionRecord
	if old == nil || json.Unmarshal(old, &cur) != nil {
		return errSessionGone
	}
	if !bytes.Equal(cur.Refresh, sealed) {
		return errSessionMoved
	}
	return nil
}

// refusal reports whether a token endpoint status is the provider's answer about the grant
// (RFC 6749 §5.2: 400, or 401 for the client) rather than a failure to answer.
func refusal(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized
}

// oauthErrorName names a token endpoint error without its body.
func oauthErrorName(re *oauth2.RetrieveError) string {
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	return fmt.Sprintf("status %d", re.Response.StatusCode)
}

// providerError describes a failed token request for the log. A RetrieveError's own message
// quotes the response body, which is not ours to log; transport errors name only the endpoint.
func providerError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return strings.TrimSpace(fmt.Sprintf("token endpoint answered status %d %s", re.Response.StatusCode, re.ErrorCode))
	}
	return err.Error()
}

func sameGroups(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func describeGroups(rec sessionRecord) string {
	s := "groups [" + strings.Join(rec.Groups, ", ") + "]"
	if rec.Email != "" {
		s = rec.Email + " in " + s
	}
	return s
}

// sealRefresh encrypts a refresh token for the record stored under key, which is bound as
// additional data: a sealed token copied into another session's record does not open.
func (s *Sessions) sealRefresh(key, token string) []byte {
	nonce := randomBytes(s.tokens.NonceSize())
	return s.tokens.Seal(nonce, nonce, []byte(token), []byte(key))
}

func (s *Sessions) openRefresh(key string, sealed []byte) (string, error) {
	n := s.tokens.NonceSize()
	if len(sealed) < n+s.tokens.Overhead() {
		return "", errors.New("sealed refresh token too short")
	}
	plain, err := s.tokens.Open(nil, sealed[:n], sealed[n:], []byte(key))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}
