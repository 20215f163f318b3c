package authn

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Airlock's client credentials are stateless: everything the proxy needs to know about a
// credential (who, for which target, why, until when) travels sealed inside the token the
// client presents, and the matching secret is re-derived from the token on every call. So any
// replica can verify any credential without a store round trip, and issuing a credential
// writes nothing. The price is that a credential cannot be revoked before it expires other
// than by rotating the issuer key; the TTL is kept short for that reason.

// Sentinel errors of credential verification. Callers branch on them (errors.Is) to pick the
// client-facing error; their text never contains the token.
var (
	ErrCredentialInvalid = errors.New("credential is invalid or was not issued by this Airlock")
	ErrCredentialExpired = errors.New("credential has expired")
)

// Key-derivation labels. Each use of the issuer key gets its own derived key, so that no
// value computed for one purpose (an AWS secret, a key ID) can be replayed as another (a
// sealed token), and so that an AWS session token can never be opened as a bearer token.
const (
	labelSessionSeal = "airlock/v1/aws-session-token/seal"
	labelSecret      = "airlock/v1/aws-session-token/secret-access-key"
	labelKeyID       = "airlock/v1/aws-session-token/access-key-id"
	labelBearerSeal  = "airlock/v1/bearer-token/seal"
)

const (
	// BearerPrefix starts every Airlock bearer token, so that the proxy (and a human reading
	// a header) can tell it apart from a cloud's own tokens.
	BearerPrefix = "airlock-v1."

	// sessionTokenVersion is the first byte of a sealed AWS session token, for key or
	// format rotation later.
	sessionTokenVersion = 1

	// maxReasonLen bounds what a client can make Airlock carry in every request header.
	maxReasonLen = 1024
	// maxTokenLen refuses absurd inputs before any decoding or decryption work.
	maxTokenLen = 64 << 10

	kindAWS    = "aws"
	kindBearer = "bearer"
)

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Key is the 32-byte master key that seals tokens and derives secrets. Every replica
	// must share it; rotating it invalidates every credential in flight.
	Key []byte
	// TTL is how long an issued credential works. Default 1h.
	TTL time.Duration
	// Now is the clock; default time.Now. Tests inject a fixed clock to check expiry.
	Now func() time.Time
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *IssuerConfig) CheckAndSetDefaults() error {
	if len(c.Key) != 32 {
		return fmt.Errorf("issuer key must be 32 bytes, got %d", len(c.Key))
	}
	if c.TTL < 0 {
		return fmt.Errorf("issuer ttl must not be negative, got %s", c.TTL)
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.TTL < time.Minute {
		return fmt.Errorf("issuer ttl must be at least 1m, got %s", c.TTL)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Issuer mints and verifies Airlock-issued client credentials: AWS session credentials for
// SigV4 clients and bearer tokens for GCP/Azure clients.
type Issuer struct {
	ttl         time.Duration
	now         func() time.Time
	sessionAEAD cipher.AEAD
	bearerAEAD  cipher.AEAD
	secretKey   []byte
	keyIDKey    []byte
}

// NewIssuer checks the config and derives the per-purpose keys.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	keys := make(map[string][]byte, 4)
	for _, label := range []string{labelSessionSeal, labelBearerSeal, labelSecret, labelKeyID} {
		k, err := hkdf.Key(sha256.New, cfg.Key, nil, label, 32)
		if err != nil {
			return nil, fmt.Errorf("derive issuer keys: %w", err)
		}
		keys[label] = k
	}
	sessionAEAD, err := newGCM(keys[labelSessionSeal])
	if err != nil {
		return nil, err
	}
	bearerAEAD, err := newGCM(keys[labelBearerSeal])
	if err != nil {
		return nil, err
	}
	return &Issuer{
		ttl:         cfg.TTL,
		now:         cfg.Now,
		sessionAEAD: sessionAEAD,
		bearerAEAD:  bearerAEAD,
		secretKey:   keys[labelSecret],
		keyIDKey:    keys[labelKeyID],
	}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("issuer cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// TTL is how long the credentials this issuer mints stay valid.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// AWSCredentials are what `airlock credentials aws` hands to the AWS tools.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// LogValue keeps the secret and the token out of logs: only the key ID is printed.
func (c AWSCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID))
}

// String keeps fmt's %v and %+v from printing the secret.
func (c AWSCredentials) String() string { return "AWSCredentials{" + c.AccessKeyID + "}" }

// GoString keeps fmt's %#v from printing the secret.
func (c AWSCredentials) GoString() string { return c.String() }

// CredentialProcessJSON renders the credentials in the format of the AWS shared config's
// credential_process setting.
func (c AWSCredentials) CredentialProcessJSON() ([]byte, error) {
	return json.Marshal(struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339)})
}

// tokenClaims is what a sealed token carries. Short JSON names keep the token (which every
// request repeats in a header) small.
type tokenClaims struct {
	Kind     string   `json:"k"`
	Subject  string   `json:"sub"`
	Email    string   `json:"em,omitempty"`
	Groups   []string `json:"grp,omitempty"`
	Target   string   `json:"tgt"`
	Cloud    string   `json:"cld,omitempty"`
	Reason   string   `json:"rsn,omitempty"`
	Ticket   string   `json:"tkt,omitempty"`
	IssuedAt int64    `json:"iat"`
	Expires  int64    `json:"exp"`
	// Nonce makes two credentials issued in the same second for the same request distinct,
	// so their key IDs and secrets differ too.
	Nonce []byte `json:"n"`
}

func (c *tokenClaims) identity() Identity {
	return Identity{
		Subject: c.Subject, Email: c.Email, Groups: c.Groups,
		Target: c.Target, Reason: c.Reason, Ticket: c.Ticket,
		ExpiresAt: time.Unix(c.Expires, 0).UTC(),
	}
}

// ticketPattern finds a ticket reference in a reason: a tracker key such as OPS-123 or an
// issue number such as #123.
var ticketPattern = regexp.MustCompile(`\b[A-Z][A-Z0-9]{1,15}-[0-9]{1,10}\b|#[0-9]{1,10}\b`)

// TicketFromReason returns the first ticket reference in reason, or "".
func TicketFromReason(reason string) string {
	return ticketPattern.FindString(reason)
}

func (i *Issuer) newClaims(kind string, id Identity, cloud, target, reason string) (*tokenClaims, error) {
	if id.Subject == "" {
		return nil, errors.New("issue credential: identity has no subject")
	}
	if target == "" {
		return nil, errors.New("issue credential: target is required")
	}
	if len(reason) > maxReasonLen {
		return nil, fmt.Errorf("issue credential: reason is longer than %d bytes", maxReasonLen)
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("issue credential: %w", err)
	}
	ticket := TicketFromReason(reason)
	if ticket == "" {
		ticket = id.Ticket // e.g. set by the API from a separate field
	}
	now := i.now()
	return &tokenClaims{
		Kind: kind, Subject: id.Subject, Email: id.Email, Groups: id.Groups,
		Target: target, Cloud: cloud, Reason: reason, Ticket: ticket,
		IssuedAt: now.Unix(), Expires: now.Add(i.ttl).Unix(), Nonce: nonce,
	}, nil
}

// seal encrypts claims with AES-GCM. Sealing (rather than only signing) keeps group names,
// reasons and ticket numbers out of client-side logs and upstream-visible headers. The token
// kind is bound as additional data so a token of one kind never opens as another.
func seal(aead cipher.AEAD, version byte, c *tokenClaims) ([]byte, error) {
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:1+aead.NonceSize()], plain, []byte(c.Kind)), nil
}

// open reverses seal and checks kind and expiry with the issuer's clock.
func (i *Issuer) open(aead cipher.AEAD, version byte, kind string, raw []byte) (*tokenClaims, error) {
	ns := aead.NonceSize()
	if len(raw) < 1+ns+aead.Overhead() || raw[0] != version {
		return nil, ErrCredentialInvalid
	}
	plain, err := aead.Open(nil, raw[1:1+ns], raw[1+ns:], []byte(kind))
	if err != nil {
		return nil, ErrCredentialInvalid
	}
	var c tokenClaims
	if err := json.Unmarshal(plain, &c); err != nil || c.Kind != kind || c.Subject == "" {
		return nil, ErrCredentialInvalid
	}
	if !i.now().Before(time.Unix(c.Expires, 0)) {
		return nil, ErrCredentialExpired
	}
	return &c, nil
}

// tokenEncoding is URL-safe and unpadded: the token then needs no escaping in a header or a
// presigned URL's query, so every client signs exactly the bytes Airlock receives.
var tokenEncoding = base64.RawURLEncoding

// IssueAWS mints AWS session credentials for id to use against target. The session token
// carries the sealed claims; the access key ID and secret are derived from it.
func (i *Issuer) IssueAWS(id Identity, target, reason string) (AWSCredentials, error) {
	c, err := i.newClaims(kindAWS, id, "aws", target, reason)
	if err != nil {
		return AWSCredentials{}, err
	}
	raw, err := seal(i.sessionAEAD, sessionTokenVersion, c)
	if err != nil {
		return AWSCredentials{}, fmt.Errorf("issue aws credentials: %w", err)
	}
	token := tokenEncoding.EncodeToString(raw)
	return AWSCredentials{
		AccessKeyID:     i.accessKeyID(token),
		SecretAccessKey: i.secretFor(token),
		SessionToken:    token,
		Expiration:      time.Unix(c.Expires, 0).UTC(),
	}, nil
}

// VerifySessionToken opens an AWS session token Airlock issued, checks its expiry, and
// returns who it was issued to (Target, Reason, Ticket and ExpiresAt set) and the secret
// access key the client signs with. Errors wrap ErrCredentialInvalid or ErrCredentialExpired.
func (i *Issuer) VerifySessionToken(token string) (Identity, string, error) {
	if token == "" || len(token) > maxTokenLen {
		return Identity{}, "", ErrCredentialInvalid
	}
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil {
		return Identity{}, "", ErrCredentialInvalid
	}
	c, err := i.open(i.sessionAEAD, sessionTokenVersion, kindAWS, raw)
	if err != nil {
		return Identity{}, "", err
	}
	return c.identity(), i.secretFor(token), nil
}

// secretFor derives the secret access key of a session token: HMAC-SHA256 under a key used
// for nothing else, so it can be re-derived by any replica and by nobody without the key.
// 30 bytes give 40 base64 characters, the shape of an AWS secret.
func (i *Issuer) secretFor(token string) string {
	m := hmac.New(sha256.New, i.secretKey)
	m.Write([]byte(token))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:30])
}

// accessKeyID derives the key ID that goes with a session token: "ASIA" (AWS's prefix for
// temporary credentials, which tools treat as needing a session token) and 16 base32
// characters. It only names the credential; the secret is what authenticates it.
func (i *Issuer) accessKeyID(token string) string {
	m := hmac.New(sha256.New, i.keyIDKey)
	m.Write([]byte(token))
	return "ASIA" + base32.StdEncoding.EncodeToString(m.Sum(nil)[:10])
}

// IssueBearer mints a bearer token for id to use against target of cloud (gcp, azure).
func (i *Issuer) IssueBearer(id Identity, cloud, target, reason string) (string, time.Time, error) {
	if cloud == "" {
		return "", time.Time{}, errors.New("issue bearer token: cloud is required")
	}
	c, err := i.newClaims(kindBearer, id, cloud, target, reason)
	if err != nil {
		return "", time.Time{}, err
	}
	raw, err := seal(i.bearerAEAD, sessionTokenVersion, c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue bearer token: %w", err)
	}
	return BearerPrefix + tokenEncoding.EncodeToString(raw), time.Unix(c.Expires, 0).UTC(), nil
}

// VerifyBearer opens a bearer token Airlock issued and returns its identity (Target, Reason,
// Ticket and ExpiresAt set) and the cloud it was issued for. Errors wrap
// ErrCredentialInvalid or ErrCredentialExpired.
func (i *Issuer) VerifyBearer(token string) (Identity, string, error) {
	rest, ok := strings.CutPrefix(token, BearerPrefix)
	if !ok || len(token) > maxTokenLen {
		return Identity{}, "", ErrCredentialInvalid
	}
	raw, err := tokenEncoding.DecodeString(rest)
	if err != nil {
		return Identity{}, "", ErrCredentialInvalid
	}
	c, err := i.open(i.bearerAEAD, sessionTokenVersion, kindBearer, raw)
	if err != nil {
		return Identity{}, "", err
	}
	return c.identity(), c.Cloud, nil
}
