// Package audit owns the audit trail: the event schema, the hash chain that makes it
// tamper-evident, and the sinks (JSONL file, Redis stream, stdout, webhook, live SSE).
package audit

import (
	"time"
)

// SchemaVersion is the version of the event schema; it is in every event as "v".
const SchemaVersion = 1

// Event kinds.
const (
	KindDecision   = "decision"
	KindApproval   = "approval"
	KindForward    = "forward"
	KindCredential = "credential"
	KindLogin      = "login"
)

// Identity is who an event is about (never a token or secret).
type Identity struct {
	Subject string   `json:"subject,omitempty"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// Permission is an IAM action on a resource ("" for none named).
type Permission struct {
	Action   string `json:"action"`
	Resource string `json:"resource,omitempty"`
}

// Event is one audit record: one JSON object a line. Field names are the public contract.
type Event struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	RequestID string    `json:"request_id,omitempty"`
	Identity  Identity  `json:"identity"`
	Target    string    `json:"target,omitempty"`
	Cloud     string    `json:"cloud,omitempty"`
	Action    string    `json:"action,omitempty"`
	Service   string    `json:"service,omitempty"`
	Operation string    `json:"operation,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	// Source is what the call reads besides Resource (a copy's source object).
	Source string `json:"source,omitempty"`
	// Also lists the other permissions the call needs, each decided by policy too: s3:GetObject
	// on a copy's source, s3:PutObjectAcl of an upload that sets an ACL, iam:PassRole on the
	// role a new instance gets.
	Also           []Permission `json:"also,omitempty"`
	Region         string       `json:"region,omitempty"`
	Risk           string       `json:"risk,omitempty"`
	Decision       string       `json:"decision,omitempty"`
	Policy         string       `json:"policy,omitempty"`
	Approvers      []string     `json:"approvers,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	UpstreamStatus int          `json:"upstream_status,omitempty"`
	DurationMS     float64      `json:"duration_ms,omitempty"`
	ClientIP       string       `json:"client_ip,omitempty"`
	UserAgent      string       `json:"user_agent,omitempty"`
	// Step refines kind: held, approved, denied, expired, grant_used, error, issued, ...
	Step string `json:"step,omitempty"`
	// ApprovalID is the held request (the approval page's ID) an event belongs to.
	ApprovalID string `json:"approval_id,omitempty"`
	Comment    string `json:"comment,omitempty"`
	Error      string `json:"error,omitempty"`
	// Replica names the writer; the chain is ordered by the store stream, not by replica.
	Replica string `json:"replica,omitempty"`
	// ReplicaPrevHash links the events of one replica's file sink: it is the hash of the event
	// written to that file just before this one (or the genesis value). It lets one replica's
	// file verify on its own while PrevHash follows the global order of the store stream.
	ReplicaPrevHash string `json:"replica_prev_hash,omitempty"`
	PrevHash        string `json:"prev_hash"`
	// Hash must stay the last field: the canonical form empties its value (see chain.go).
	Hash string `json:"hash"`
}
