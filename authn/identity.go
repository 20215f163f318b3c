// Package authn owns who is calling: OIDC login and ID-token verification, browser sessions,
// the cloud credentials Airlock issues to clients, and verification of what clients present
// (SigV4 signatures, bearer tokens) back to an Identity.
package authn

import (
	"log/slog"
	"slices"
	"time"
)

// Identity is the person behind a call, and what their Airlock credential was issued for.
type Identity struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	// Target, Reason and Ticket come from the credential the client presented.
	Target string `json:"-"`
	Reason string `json:"-"`
	Ticket string `json:"-"`
	// ExpiresAt is when the presented credential stops working.
	ExpiresAt time.Time `json:"-"`
}

// InGroup reports whether the identity is in any of the groups.
func (id Identity) InGroup(groups ...string) bool {
	for _, g := range groups {
		if slices.Contains(id.Groups, g) {
			return true
		}
	}
	return false
}

// Name is the most readable name: email, else subject.
func (id Identity) Name() string {
	if id.Email != "" {
		return id.Email
	}
	return id.Subject
}

// LogValue keeps log lines to who, never credentials.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", id.Subject), slog.String("email", id.Email))
}
