package kubeletapi

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestServingCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Now()
	cert, err := ServingCertificate("", "", dir, []string{"node-1", "host-1"}, []net.IP{net.ParseIP("192.0.2.7")}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if !slices.Contains(leaf.DNSNames, "node-1") || !slices.Contains(leaf.DNSNames, "host-1") || len(leaf.IPAddresses) == 0 ||
		!leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) {
		t.Errorf("names %v, IPs %v", leaf.DNSNames, leaf.IPAddresses)
	}
	for _, f := range []string{"kubelet.crt", "kubelet.key"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v (want mode 0600)", f, fi, err)
		}
	}

	// Kept: the second start serves the same certificate.
	again, err := ServingCertificate("", "", dir, []string{"node-1"}, nil, now)
	if err != nil || !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("second start: %v, same certificate %v", err, err == nil && bytes.Equal(again.Certificate[0], cert.Certificate[0]))
	}
	// Expired: made again.
	renewed, err := ServingCertificate("", "", dir, []string{"node-1"}, nil, leaf.NotAfter.Add(time.Second))
	if err != nil || bytes.Equal(renewed.Certificate[0], cert.Certificate[0]) {
		t.Errorf("after expiry: %v, a new certificate %v", err, err == nil && !bytes.Equal(renewed.Certificate[0], cert.Certificate[0]))
	}

	// Given files are used as they are; half a pair is refused.
	crt, key := filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")
	if given, err := ServingCertificate(crt, key, t.TempDir(), nil, nil, now); err != nil || !bytes.Equal(given.Certificate[0], renewed.Certificate[0]) {
		t.Errorf("--tls-cert-file: %v", err)
	}
	if _, err := ServingCertificate(crt, "", dir, nil, nil, now); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}
