package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
)

// CSRF protection for state-changing requests made with the session cookie. The token is an
// HMAC of the session ID, so it needs no storage, differs per session and dies with it. Forms
// carry it in the csrf_token field, scripts in the X-CSRF-Token header. The browser's own
// Origin and Sec-Fetch-Site headers are checked too when it sends them.

// CSRF token carriers.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// CSRFToken returns the token that templates put in every state-changing form; "" without a
// session cookie.
func (s *Sessions) CSRFToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return s.csrfFor(c.Value)
}

func (s *Sessions) csrfFor(sessionID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyCSRF checks a state-changing request: same-origin by Sec-Fetch-Site and Origin when
// present, and the session's CSRF token in the header or form. Errors wrap ErrCSRF.
func (s *Sessions) VerifyCSRF(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("%w: request from a %s page", ErrCSRF, site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.origin {
		return fmt.Errorf("%w: origin %q is not %s", ErrCSRF, origin, s.origin)
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return fmt.Errorf("%w: no session", ErrCSRF)
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" {
		return fmt.Errorf("%w: missing %s", ErrCSRF, CSRFField)
	}
	if !hmac.Equal([]byte(got), []byte(s.csrfFor(c.Value))) {
		return fmt.Errorf("%w: wrong %s", ErrCSRF, CSRFField)
	}
	return nil
}
