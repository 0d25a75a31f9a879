package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"
	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeletClientSigner signs node client certificates; the
// csrapproving controller (or an operator) approves them.
const kubeletClientSigner = "kubernetes.io/kube-apiserver-client-kubelet"

// certFile is where the node's client certificate and key live, in one
// PEM file, as kubelet's kubelet-client-current.pem.
func certFile(dir string) string { return filepath.Join(dir, "berth-client-current.pem") }

// credentials are the node's client certificate, swapped in place when
// it is rotated: every connection made afterwards presents the new one.
type credentials struct {
	dir  string
	cert atomic.Pointer[tls.Certificate]
}

func (c *credentials) load() error {
	data, err := os.ReadFile(certFile(c.dir))
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return fmt.Errorf("%s: %w", certFile(c.dir), err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	c.cert.Store(&cert)
	return nil
}

// valid says whether the current certificate is for node and has more
// than a minute left.
func (c *credentials) valid(node string, now time.Time) bool {
	cert := c.cert.Load()
	return cert != nil && cert.Leaf.Subject.CommonName == "system:node:"+node && now.Add(time.Minute).Before(cert.Leaf.NotAfter)
}

// rotateAt is when a new certificate is asked for: at 80 % of the
// current one's lifetime (kubelet picks between 70 and 90 %).
func (c *credentials) rotateAt() time.Time {
	leaf := c.cert.Load().Leaf
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 8 / 10)
}

// restConfig is base (server and CA) authenticating with the current
// certificate.
func (c *credentials) restConfig(base *rest.Config) (*rest.Config, error) {
	anon := rest.AnonymousClientConfig(base)
	tlsCfg, err := rest.TLSConfigFor(anon)
	if err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		return nil, errors.New("no TLS configuration")
	}
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert.Load(), nil }
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	out := rest.CopyConfig(anon)
	out.TLSClientConfig = rest.TLSClientConfig{}
	out.Transport = tr
	return out, nil
}

// requestCertificate asks the cluster for a client certificate for node
// through a CertificateSigningRequest, waits until it is issued, and
// stores it in dir. client authenticates the request: the bootstrap token
// at first, the node's current certificate when rotating.
func requestCertificate(ctx context.Context, client *rest.RESTClient, node, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
	}, key)
	if err != nil {
		return err
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: kubeletClientSigner,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
	created := &certificatesv1.CertificateSigningRequest{}
	if err := client.Post().Resource("certificatesigningrequests").Body(csr).Do(ctx).Into(created); err != nil {
		return fmt.Errorf("create certificate signing request: %w", err)
	}
	var issued []byte
	for wait := 500 * time.Millisecond; issued == nil; wait = min(wait*2, 10*time.Second) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		got := &certificatesv1.CertificateSigningRequest{}
		if err := client.Get().Resource("certificatesigningrequests").Name(created.Name).Do(ctx).Into(got); err != nil {
			continue // the API may be briefly unreachable: keep waiting
		}
		for _, c := range got.Status.Conditions {
			if (c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) && c.Status == v1.ConditionTrue {
				return fmt.Errorf("certificate signing request %s %s: %s: %s", created.Name, c.Type, c.Reason, c.Message)
			}
		}
		if len(got.Status.Certificate) > 0 {
			issued = got.Status.Certificate
		}
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	data := append(issued, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	if _, err := tls.X509KeyPair(data, data); err != nil {
		return fmt.Errorf("issued certificate of %s: %w", created.Name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(certFile(dir), data, 0o600)
}

// writeKubeconfig writes a kubeconfig at path for the cluster of base
// that authenticates with the certificate in dir, as kubelet writes its
// own after bootstrapping, so that tools (and a berthd without the
// bootstrap flag) can use it.
func writeKubeconfig(path string, base *rest.Config, dir string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default-cluster"] = &clientcmdapi.Cluster{Server: base.Host, CertificateAuthority: base.CAFile,
		CertificateAuthorityData: base.CAData, TLSServerName: base.ServerName}
	cfg.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: certFile(dir), ClientKey: certFile(dir)}
	cfg.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth"}
	cfg.CurrentContext = "default-context"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o600)
}

// certificatesClient is a REST client for certificates.k8s.io/v1.
func certificatesClient(rc *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(rc)
	c.GroupVersion, c.APIPath = &certificatesv1.SchemeGroupVersion, "/apis"
	c.NegotiatedSerializer = codecs.WithoutConversion()
	return rest.RESTClientFor(c)
}
