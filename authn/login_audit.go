package authn

import (
	"context"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/airlockhq/airlock/audit"
)

// Auditor records audit events; audit.Log satisfies it.
type Auditor interface {
	Record(ctx context.Context, e *audit.Event) error
}

// Login steps, in the audit event's "step" field.
const (
	StepBrowserLogin  = "browser"   // a browser session was created
	StepTokenFirstUse = "api_token" // an ID token was presented to the API for the first time
	StepLogout        = "logout"    // a browser session was ended (by the user, or because the provider refused to refresh it: see reason)
	// StepSessionRefresh: a browser session's groups (or email) changed when they were refreshed
	// at the provider; reason says what they were before.
	StepSessionRefresh = "refresh"
	StepBootstrap      = "bootstrap" // the development bootstrap token was used
)

// loginEvent builds a "login" event: who, from where, and how; never a token.
func loginEvent(r *http.Request, id Identity, step string, now time.Time) *audit.Event {
	return &audit.Event{
		Time: now.UTC(),
		Kind: audit.KindLogin,
		Step: step,
		Identity: audit.Identity{
			Subject: id.Subject,
			Email:   id.Email,
			Groups:  slices.Clone(id.Groups),
		},
		ClientIP:  clientIP(r),
		UserAgent: r.UserAgent(),
	}
}

// clientIP is the peer address. Forwarded headers are not trusted here: the proxy that
// terminates them is the one to rewrite RemoteAddr.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
