package approval

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
)

// State is where a held request stands.
type State string

// Request states. Only pending changes; the other three are final.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateDenied   State = "denied"
	StateExpired  State = "expired"
)

// Errors callers branch on (the API maps them to 403, 404, 409).
var (
	ErrNotFound        = errors.New("approval request not found")
	ErrSelfApproval    = errors.New("requesters may not approve their own request")
	ErrNotApprover     = errors.New("not in the approver groups of this request")
	ErrAlreadyDecided  = errors.New("request is already decided")
	ErrAlreadyApproved = errors.New("already approved by this person")
)

// Person is who approved or denied: never more than the names.
type Person struct {
	Subject string `json:"subject"`
	Email   string `json:"email,omitempty"`
}

func personOf(id authn.Identity) Person { return Person{Subject: id.Subject, Email: id.Email} }

// Name is the most readable name: email, else subject.
func (p Person) Name() string {
	if p.Email != "" {
		return p.Email
	}
	return p.Subject
}

// Approval is one approver's yes.
type Approval struct {
	By      Person    `json:"by"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// Request is a held call waiting for approvers, and what became of it. It is what the API and
// the page show: JSON, no secrets.
type Request struct {
	ID        string         `json:"id"`
	State     State          `json:"state"`
	Requester authn.Identity `json:"requester"`
	Action    catalog.Action `json:"action"`
	Target    string         `json:"target"`
	Context   RequestContext `json:"context"`
	// Rule is the name of the policy that held the call; Message is its message, if any.
	Rule      string     `json:"rule"`
	Message   string     `json:"message,omitempty"`
	Approvers Approvers  `json:"approvers"`
	Grant     GrantTerms `json:"grant"`
	Approvals []Approval `json:"approvals"`
	DeniedBy  *Person    `json:"denied_by,omitempty"`
	// Comment is the denier's comment, handed to the waiting call.
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url"`
	// GrantID is the grant the approval created.
	GrantID string `json:"grant_id,omitempty"`
}

// Needed is how many more distinct approvals the request needs.
func (r *Request) Needed() int {
	if r.State != StatePending {
		return 0
	}
	return max(0, r.Approvers.Count-len(r.Approvals))
}

// CheckApprover says whether id may approve this request (nil) or why not (ErrSelfApproval,
// ErrNotApprover, ErrAlreadyApproved). It does not look at the state.
func (r *Request) CheckApprover(id authn.Identity) error {
	if id.Subject == "" {
		return ErrNotApprover
	}
	if id.Subject == r.Requester.Subject && !r.Approvers.AllowSelf {
		return ErrSelfApproval
	}
	if !id.InGroup(r.Approvers.Groups...) {
		return ErrNotApprover
	}
	if r.ApprovedBy(id.Subject) {
		return ErrAlreadyApproved
	}
	return nil
}

// CheckDenier says whether id may deny the request: any approver, and the requester (who
// withdraws it).
func (r *Request) CheckDenier(id authn.Identity) error {
	if id.Subject != "" && (id.Subject == r.Requester.Subject || id.InGroup(r.Approvers.Groups...)) {
		return nil
	}
	return ErrNotApprover
}

// ApprovedBy reports whether the subject has already approved.
func (r *Request) ApprovedBy(subject string) bool {
	return slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.By.Subject == subject })
}

// VisibleTo reports whether viewer may see the request: the requester and the approvers.
func (r *Request) VisibleTo(viewer authn.Identity) bool {
	return viewer.Subject != "" && (viewer.Subject == r.Requester.Subject || viewer.InGroup(r.Approvers.Groups...))
}

// approverNames lists who approved, for audit and grants.
func (r *Request) approverNames() []string {
	out := make([]string, 0, len(r.Approvals))
	for _, a := range r.Approvals {
		out = append(out, a.By.Name())
	}
	return out
}

// Grant is what an approval created: the requester may repeat the approved call until the
// uses run out or it expires.
type Grant struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	Subject   string `json:"subject"`
	Target    string `json:"target"`
	// Action is the IAM action name; Resource is empty when Scope is "action".
	Action    string    `json:"action"`
	Resource  string    `json:"resource,omitempty"`
	Scope     string    `json:"scope"`
	Rule      string    `json:"rule"`
	UsesLeft  int       `json:"uses_left"`
	ExpiresAt time.Time `json:"expires_at"`
	Approvers []string  `json:"approvers"`
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID is 16 random bytes, base32 lowercase: URL-safe and unguessable (26 characters).
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return strings.ToLower(idEncoding.EncodeToString(b))
}

// fingerprint hashes the fields that make two calls "the same call" into a fixed-size,
// key-safe string, whatever characters resource names contain.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strings.ToLower(idEncoding.EncodeToString(h.Sum(nil)[:20]))
}

// sameCall identifies retries of one call: who, where, what, on what.
func sameCall(subject, target, action, resource string) string {
	return fingerprint("call", subject, target, strings.ToLower(action), resource)
}

// grantFor identifies the grant a call may use in a scope.
func grantFor(scope, subject, target, action, resource string) string {
	if scope == ScopeAction {
		resource = ""
	}
	return fingerprint("grant", scope, subject, target, strings.ToLower(action), resource)
}
