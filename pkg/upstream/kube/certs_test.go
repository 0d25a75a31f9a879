package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"
)

// selfSigned writes a certificate for cn, valid from notBefore for life,
// where credentials look for it.
func selfSigned(t *testing.T, dir, cn string, notBefore time.Time, life time.Duration) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.Add(life)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...)
	if err := os.WriteFile(certFile(dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	c := &credentials{dir: dir}
	if err := c.load(); !os.IsNotExist(err) {
		t.Errorf("load without a certificate: %v", err)
	}
	if c.valid("n1", t0.Time) {
		t.Error("no certificate is valid")
	}
	selfSigned(t, dir, "system:node:n1", t0.Time, 10*time.Hour)
	if err := c.load(); err != nil {
		t.Fatal(err)
	}
	if !c.valid("n1", t0.Add(time.Hour)) || c.valid("n2", t0.Add(time.Hour)) || c.valid("n1", t0.Add(10*time.Hour)) {
		t.Error("valid: wrong node or expired accepted, or the right one refused")
	}
	if got := c.rotateAt(); !got.Equal(t0.Add(8 * time.Hour)) {
		t.Errorf("rotate at %v, want 80 %% of the lifetime", got)
	}
	if err := os.WriteFile(certFile(dir), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.load(); err == nil {
		t.Error("a damaged certificate file loaded")
	}
}
