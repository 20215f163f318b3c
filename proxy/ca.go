package proxy

import (
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/store"
)

// caStore is what the CA needs from the store: SetNX so that replicas starting together agree
// on one CA, Update to replace one that is about to expire.
type caStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Update(ctx context.Context, key string, fn func(old []byte) ([]byte, time.Duration, error)) error
}

const (
	caStoreKey  = "forward:ca"
	caValidity  = 365 * 24 * time.Hour
	caRenewal   = 30 * 24 * time.Hour // a CA with less left than this is replaced at start
	leafTTL     = 24 * time.Hour
	leafRenewal = time.Hour // a cached leaf with less left than this is re-issued
	clockSkew   = time.Hour // leaves start this early, for clients whose clock is behind
)

// caAdditionalData binds the sealed key to its purpose: a ciphertext copied from another
// Airlock record does not open as the CA key.
var caAdditionalData = []byte("airlock forward-proxy CA key v1")

// caPermittedDomains are the only names the CA can ever sign for (an X.509 name constraint):
// if its key leaked, it could impersonate cloud API hosts but no other site. The suffixes
// cover AWS's partitions, Google APIs and Azure Resource Manager.
var caPermittedDomains = []string{
	"amazonaws.com", "amazonaws.com.cn", "amazonaws.eu", "api.aws",
	"c2s.ic.gov", "sc2s.sgov.gov", "cloud.adc-e.uk", "csp.hci.ic.gov",
	"googleapis.com", "management.azure.com",
}

// CAConfig configures the forward-proxy CA.
type CAConfig struct {
	Store caStore
	// Key is the store encryption key (32 bytes); the CA's private key is sealed with it
	// (AES-256-GCM) before it reaches the store, like cached cloud credentials.
	Key    []byte
	Logger *slog.Logger
	Now    func() time.Time
	// LeafCacheSize bounds the in-memory cache of issued leaf certificates (default 1024).
	LeafCacheSize int
}

// CheckAndSetDefaults refuses a CA without its store or key and fills the rest.
func (c *CAConfig) CheckAndSetDefaults() error {
	if c.Store == nil || c.Logger == nil {
		return errors.New("proxy: CAConfig needs Store and Logger")
	}
	if len(c.Key) != 32 {
		return errors.New("proxy: CAConfig.Key must be 32 bytes")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LeafCacheSize <= 0 {
		c.LeafCacheSize = 1024
	}
	return nil
}

// CA is Airlock's own certificate authority for forward mode. It is generated on first start
// (one per installation, never shipped), kept in the store with its key sealed, and issues
// short-lived leaf certificates for the allowlisted cloud hosts it intercepts.
type CA struct {
	cfg  CAConfig
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte

	mu     sync.Mutex
	leaves map[string]*list.Element
	order  *list.List // most recently used first; values are *leafEntry
}

type leafEntry struct {
	host string
	cert *tls.Certificate
}

// caRecord is the stored form: the certificate in clear, the private key sealed.
type caRecord struct {
	Cert      []byte `json:"cert"`       // DER
	SealedKey []byte `json:"sealed_key"` // nonce || AES-GCM(PKCS#8 DER)
}

// LoadOrCreateCA returns the installation's CA, creating it when the store has none (or only
// one that expires within 30 days). Replicas racing at first start end up with the same CA.
func LoadOrCreateCA(ctx context.Context, cfg CAConfig) (*CA, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cfg.Key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, cfg, aead)
	if err == nil && ca.cert.NotAfter.Sub(cfg.Now()) > caRenewal {
		return ca, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	fresh, err := newCARecord(cfg.Now(), aead)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		if _, err := cfg.Store.SetNX(ctx, caStoreKey, fresh, 0); err != nil {
			return nil, fmt.Errorf("store the forward-proxy CA: %w", err)
		}
	} else {
		// Replace the expiring CA unless another replica already did.
		err := cfg.Store.Update(ctx, caStoreKey, func(old []byte) ([]byte, time.Duration, error) {
			if c, err := parseCARecord(old, aead, cfg); err == nil && c.cert.NotAfter.Sub(cfg.Now()) > caRenewal {
				return old, 0, nil
			}
			return fresh, 0, nil
		})
		if err != nil {
			return nil, fmt.Errorf("renew the forward-proxy CA: %w", err)
		}
		cfg.Logger.Warn("forward-proxy CA renewed: clients must fetch the new CA certificate (airlock ca export)", "old_not_after", ca.cert.NotAfter)
	}
	// Whoever won the race, everyone uses what the store holds now.
	return loadCA(ctx, cfg, aead)
}

func loadCA(ctx context.Context, cfg CAConfig, aead cipher.AEAD) (*CA, error) {
	b, err := cfg.Store.Get(ctx, caStoreKey)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("read the forward-proxy CA: %w", err)
	}
	return parseCARecord(b, aead, cfg)
}

func parseCARecord(b []byte, aead cipher.AEAD, cfg CAConfig) (*CA, error) {
	if b == nil {
		return nil, store.ErrNotFound
	}
	var rec caRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("forward-proxy CA record: %w", err)
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, fmt.Errorf("forward-proxy CA certificate: %w", err)
	}
	ns := aead.NonceSize()
	if len(rec.SealedKey) < ns {
		return nil, errors.New("forward-proxy CA key: truncated")
	}
	der, err := aead.Open(nil, rec.SealedKey[:ns], rec.SealedKey[ns:], caAdditionalData)
	if err != nil {
		return nil, errors.New("forward-proxy CA key does not decrypt: was the store encryption key changed? (delete the store key " + caStoreKey + " to generate a new CA)")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("forward-proxy CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("forward-proxy CA key does not match its certificate")
	}
	return &CA{cfg: cfg, cert: cert, key: key,
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		leaves: map[string]*list.Element{}, order: list.New()}, nil
}

// newCARecord generates a CA: ECDSA P-256, one year, "Airlock CA <random>", name-constrained
// to the cloud API domains.
func newCARecord(now time.Time, aead cipher.AEAD) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	tmpl := &x509.Certificate{
		SerialNumber:                randomSerial(),
		Subject:                     pkix.Name{CommonName: "Airlock CA " + hex.EncodeToString(id[:]), Organization: []string{"Airlock"}},
		NotBefore:                   now.Add(-clockSkew),
		NotAfter:                    now.Add(caValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         caPermittedDomains,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create the forward-proxy CA: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	return json.Marshal(caRecord{Cert: der, SealedKey: aead.Seal(nonce, nonce, pk, caAdditionalData)})
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// PEM is the CA certificate, for clients' trust stores.
func (ca *CA) PEM() []byte { return ca.pem }

// Certificate is the parsed CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Fingerprint is the SHA-256 of the CA certificate, as openssl x509 -fingerprint -sha256 shows it.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// Covers reports whether the CA's name constraints allow a certificate for host.
func (ca *CA) Covers(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range ca.cert.PermittedDNSDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// Leaf returns a certificate for host signed by the CA, valid for 24 hours, from a bounded
// in-memory cache when one with at least an hour left is there.
func (ca *CA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(host)
	if net.ParseIP(host) != nil || !ca.Covers(host) {
		return nil, fmt.Errorf("the Airlock CA does not issue certificates for %q", host)
	}
	now := ca.cfg.Now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if el, ok := ca.leaves[host]; ok {
		e := el.Value.(*leafEntry)
		if e.cert.Leaf.NotAfter.Sub(now) > leafRenewal {
			ca.order.MoveToFront(el)
			return e.cert, nil
		}
		ca.order.Remove(el)
		delete(ca.leaves, host)
	}
	cert, err := ca.issue(host, now)
	if err != nil {
		return nil, err
	}
	ca.leaves[host] = ca.order.PushFront(&leafEntry{host: host, cert: cert})
	for ca.order.Len() > ca.cfg.LeafCacheSize {
		oldest := ca.order.Back()
		ca.order.Remove(oldest)
		delete(ca.leaves, oldest.Value.(*leafEntry).host)
	}
	return cert, nil
}

func (ca *CA) issue(host string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafTTL)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: host, Organization: []string{"Airlock"}},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issue a certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// Handler serves the CA certificate as PEM. It needs no authentication: the certificate is
// public, and clients fetch it before they trust anything.
func (ca *CA) Handler(forwardListen string) http.Handler {
	_, port, _ := net.SplitHostPort(forwardListen)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="airlock-ca.pem"`)
		w.Header().Set("Cache-Control", "no-cache")
		if port != "" {
			// Lets `airlock exec` find the forward proxy next to the server it talks to.
			w.Header().Set(ForwardPortHeader, port)
		}
		_, _ = w.Write(ca.pem)
	})
}

// ForwardPortHeader carries the forward proxy's port on GET /api/v1/ca.pem.
const ForwardPortHeader = "Airlock-Forward-Proxy-Port"
