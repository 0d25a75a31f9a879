package kubeletapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
	certutil "k8s.io/client-go/util/cert"
)

// ServingCertificate is the certificate the API presents: certFile and
// keyFile when given (kubelet's --tls-cert-file, --tls-private-key-file),
// else kubelet.crt and kubelet.key in certDir, which are made once,
// self-signed for names (the first is the subject) and ips, and kept; a
// pair that cannot be read or has expired is made again.
func ServingCertificate(certFile, keyFile, certDir string, names []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("serving certificate %s: %w", certFile, err)
		}
		return cert, nil
	case certFile != "" || keyFile != "":
		return tls.Certificate{}, errors.New("serving certificate: give both the certificate and the key file, or neither")
	case len(names) == 0:
		return tls.Certificate{}, errors.New("serving certificate: no host name to make one for")
	}
	certFile, keyFile = filepath.Join(certDir, "kubelet.crt"), filepath.Join(certDir, "kubelet.key")
	if cert, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && now.Before(cert.Leaf.NotAfter) {
		return cert, nil
	}
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(names[0], ips, names[1:])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed serving certificate: %w", err)
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	// A crash between the writes leaves a pair that does not match: it is
	// made again at the next start.
	if err := renameio.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	if err := renameio.WriteFile(certFile, certPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// ClientCAs reads a PEM bundle of client CAs.
func ClientCAs(pemBundle []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBundle) {
		return nil, errors.New("no PEM certificate in the client CA bundle")
	}
	return pool, nil
}
