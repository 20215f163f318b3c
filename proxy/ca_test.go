package proxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store/memory"
)

func testCAConfig(st caStore, key byte) CAConfig {
	return CAConfig{Store: st, Key: bytes.Repeat([]byte{key}, 32), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestCAIsGeneratedOnceAndStoredWithItsKeySealed(t *testing.T) {
	ctx := context.Background()
	st := memory.New(nil)
	ca, err := LoadOrCreateCA(ctx, testCAConfig(st, 1))
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Certificate()
	if !cert.IsCA || !strings.HasPrefix(cert.Subject.CommonName, "Airlock CA ") || len(cert.Subject.CommonName) <= len("Airlock CA ") {
		t.Errorf("CA subject %q, IsCA %v", cert.Subject.CommonName, cert.IsCA)
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", cert.PublicKey)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("CA validity %v, want about a year", d)
	}
	if !bytes.HasPrefix(ca.PEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("PEM: %q", ca.PEM())
	}

	stored, err := st.Get(ctx, caStoreKey)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ca.key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte("PRIVATE KEY")) || bytes.Contains(stored, der) || bytes.Contains(stored, raw) {
		t.Fatal("the store holds the CA private key in clear")
	}

	// A second server on the same store loads the same CA.
	again, err := LoadOrCreateCA(ctx, testCAConfig(st, 1))
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Errorf("second load made a new CA: %s != %s", again.Fingerprint(), ca.Fingerprint())
	}
	// Another encryption key cannot open it, and says so rather than silently replacing it.
	if _, err := LoadOrCreateCA(ctx, testCAConfig(st, 2)); err == nil || !strings.Contains(err.Error(), "encryption key") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestReplicasStartingTogetherAgreeOnOneCA(t *testing.T) {
	st := memory.New(nil)
	var wg sync.WaitGroup
	prints := make([]string, 8)
	for i := range prints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := LoadOrCreateCA(context.Background(), testCAConfig(st, 1))
			if err != nil {
				t.Error(err)
				return
			}
			prints[i] = ca.Fingerprint()
		}()
	}
	wg.Wait()
	for _, p := range prints {
		if p != prints[0] {
			t.Fatalf("replicas disagree: %v", prints)
		}
	}
}

func TestCAIsRenewedWhenItExpiresWithinAMonth(t *testing.T) {
	st := memory.New(nil)
	ca, err := LoadOrCreateCA(context.Background(), testCAConfig(st, 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testCAConfig(st, 1)
	cfg.Now = func() time.Time { return ca.Certificate().NotAfter.Add(-10 * 24 * time.Hour) }
	renewed, err := LoadOrCreateCA(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Fingerprint() == ca.Fingerprint() {
		t.Fatal("an expiring CA was not renewed")
	}
	// The next replica loads the renewed one rather than renewing again.
	next, err := LoadOrCreateCA(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if next.Fingerprint() != renewed.Fingerprint() {
		t.Error("a second replica renewed the CA again")
	}
}

func TestLeafCertificatesVerifyAgainstTheCA(t *testing.T) {
	now := time.Now()
	cfg := testCAConfig(memory.New(nil), 1)
	cfg.Now = func() time.Time { return now }
	ca, err := LoadOrCreateCA(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, host := range []string{"s3.us-east-1.amazonaws.com", "my-bucket.s3.us-east-1.amazonaws.com", "compute.googleapis.com", "management.azure.com", "ec2.cn-north-1.amazonaws.com.cn"} {
		t.Run(host, func(t *testing.T) {
			leaf, err := ca.Leaf(host)
			if err != nil {
				t.Fatal(err)
			}
			c := leaf.Leaf
			if len(c.DNSNames) != 1 || c.DNSNames[0] != host {
				t.Errorf("SAN %v", c.DNSNames)
			}
			if d := c.NotAfter.Sub(now); d > leafTTL || d < leafTTL-time.Second || c.NotAfter.Sub(c.NotBefore) > leafTTL+clockSkew {
				t.Errorf("validity %v .. %v", c.NotBefore, c.NotAfter)
			}
			if _, err := c.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: now}); err != nil {
				t.Errorf("does not verify: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: now.Add(25 * time.Hour)}); err == nil {
				t.Error("still valid after 25 hours")
			}
			if again, _ := ca.Leaf(host); again != leaf {
				t.Error("leaf was not cached")
			}
		})
	}
	// The CA is name-constrained to cloud API domains: it signs nothing else.
	for _, host := range []string{"example.com", "github.com", "amazonaws.com.evil.example", "127.0.0.1"} {
		if _, err := ca.Leaf(host); err == nil {
			t.Errorf("issued a certificate for %s", host)
		}
	}
}

func TestLeafCacheIsBounded(t *testing.T) {
	cfg := testCAConfig(memory.New(nil), 1)
	cfg.LeafCacheSize = 2
	ca, err := LoadOrCreateCA(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := ca.Leaf("ec2.us-east-1.amazonaws.com")
	_, _ = ca.Leaf("ec2.us-west-2.amazonaws.com")
	_, _ = ca.Leaf("ec2.eu-west-1.amazonaws.com")
	if len(ca.leaves) != 2 || ca.order.Len() != 2 {
		t.Fatalf("cache holds %d", len(ca.leaves))
	}
	if again, _ := ca.Leaf("ec2.us-east-1.amazonaws.com"); again == first {
		t.Error("the least recently used leaf was not evicted")
	}
}
