package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestClusterServesNodesAndCSRs checks the control plane behaves as a real,
// locked-down cluster does for a node agent: node identities are confined
// to their own Node, and TLS bootstrapping issues node client certificates.
func TestClusterServesNodesAndCSRs(t *testing.T) {
	c := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := c.Client(t)

	t.Run("readyz", func(t *testing.T) {
		out, err := c.Kubectl(t, "get", "--raw", "/readyz")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("kubectl get --raw /readyz = %q, %v", out, err)
		}
	})

	t.Run("NodeRestriction", func(t *testing.T) {
		nc := c.ClientFor(t, c.NodeKubeconfig(t, "node-a"))
		if _, err := nc.CoreV1().Nodes().Create(ctx, node("node-a"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("node-a creating its own Node: %v", err)
		}
		_, err := nc.CoreV1().Nodes().Create(ctx, node("node-b"), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node-a creating Node node-b: got %v, want Forbidden", err)
		}
	})

	t.Run("bootstrap CSR", func(t *testing.T) {
		bc := c.ClientFor(t, c.BootstrapKubeconfig(t))
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		subject := pkix.Name{CommonName: "system:node:node-c", Organization: []string{"system:nodes"}}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := bc.CertificatesV1().CertificateSigningRequests().Create(ctx, &certsv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
			Spec: certsv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
				SignerName: certsv1.KubeAPIServerClientKubeletSignerName,
				Usages:     []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating CSR with the bootstrap token: %v", err)
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{
			Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue,
			Reason: "BerthTest", Message: "approved by the test",
		})
		if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		var certPEM []byte
		c.waitFor(t, "CSR "+csr.Name+" to be signed", time.Minute, func(ctx context.Context) (bool, error) {
			got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			certPEM = got.Status.Certificate
			return len(certPEM) > 0, nil
		})
		block, _ := pem.Decode(certPEM)
		if block == nil {
			t.Fatalf("status.certificate is not PEM: %q", certPEM)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != subject.CommonName || !slices.Equal(cert.Subject.Organization, subject.Organization) {
			t.Fatalf("issued certificate subject %v, want %v", cert.Subject, subject)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(c.CACert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("issued certificate does not chain to the cluster CA: %v", err)
		}

		// What a kubelet does next: act as node-c with its new certificate.
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := kubernetes.NewForConfig(&rest.Config{Host: c.URL, TLSClientConfig: rest.TLSClientConfig{
			CAData: c.CACert, CertData: certPEM, KeyData: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.CoreV1().Nodes().Create(ctx, node("node-c"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("node-c creating its Node with the issued certificate: %v", err)
		}
	})

	t.Run("default ServiceAccount", func(t *testing.T) {
		out, err := c.Kubectl(t, "get", "serviceaccount", "default", "--namespace=default", "--output=name")
		if err != nil || strings.TrimSpace(out) != "serviceaccount/default" {
			t.Fatalf("kubectl get serviceaccount default = %q, %v", out, err)
		}
	})
}

func node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
