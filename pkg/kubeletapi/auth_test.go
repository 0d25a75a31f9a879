package kubeletapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// reviews is the API server as the fakes see it: tokens and their users,
// and which user may do which verb on which subresource.
type reviews struct {
	mu      sync.Mutex
	tokens  map[string]string          // token → user
	allowed map[string]map[string]bool // user → "verb subresource"
	asked   []authorizationv1.SubjectAccessReviewSpec
	tokenN  int
}

func (r *reviews) ReviewToken(_ context.Context, token string) (authenticationv1.TokenReviewStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokenN++
	name, ok := r.tokens[token]
	return authenticationv1.TokenReviewStatus{Authenticated: ok, User: authenticationv1.UserInfo{Username: name, Groups: []string{"team"}}}, nil
}

func (r *reviews) ReviewAccess(_ context.Context, spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, spec)
	a := spec.ResourceAttributes
	return authorizationv1.SubjectAccessReviewStatus{Allowed: r.allowed[spec.User][a.Verb+" "+a.Subresource]}, nil
}

func (r *reviews) reset() (asked []authorizationv1.SubjectAccessReviewSpec, tokens int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	asked, tokens, r.asked, r.tokenN = r.asked, r.tokenN, nil, 0
	return asked, tokens
}

type pods []v1.Pod

func (p pods) Pods() []v1.Pod { return p }

// testCA makes a CA and client certificates it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) client(t *testing.T, cn string, groups ...string) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestAuthentication(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
	ca, stranger := newTestCA(t), newTestCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	rv := &reviews{tokens: map[string]string{"good": "bob"}, allowed: map[string]map[string]bool{
		"kube-apiserver": {"get proxy": true, "get pods": true},
		"bob":            {"get proxy": true},
		"alice":          {},
	}}
	s := &Server{cfg: Config{NodeName: "n1", Pods: pods{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}},
		Clock: clock, Log: slog.New(slog.DiscardHandler)},
		authn: newAuthenticator(roots, rv, clock), authz: newAuthorizer("n1", rv, clock)}
	s.routes()
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	get := func(path, token string, cert *tls.Certificate) (int, string) {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, _ := get("/healthz", "", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", code)
	}
	if code, _ := get("/healthz", "bad", nil); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", code)
	}
	strange := stranger.client(t, "kube-apiserver", "system:masters")
	if code, _ := get("/healthz", "", &strange); code != http.StatusUnauthorized {
		t.Errorf("certificate of another CA: %d, want 401", code)
	}
	rv.reset()

	// A token: healthz is checked as healthz, then as proxy.
	if code, body := get("/healthz", "good", nil); code != http.StatusOK || body != "ok" {
		t.Errorf("bob's /healthz: %d %q", code, body)
	}
	asked, tokens := rv.reset()
	if tokens != 1 || len(asked) != 2 || asked[0].User != "bob" || asked[0].Groups[0] != "team" ||
		*asked[0].ResourceAttributes != (authorizationv1.ResourceAttributes{Verb: "get", Version: "v1", Resource: "nodes", Subresource: "healthz", Name: "n1"}) ||
		asked[1].ResourceAttributes.Subresource != "proxy" {
		t.Errorf("bob's reviews: %d token reviews, access %+v", tokens, asked)
	}
	// Both answers are kept.
	get("/healthz", "good", nil)
	if asked, tokens := rv.reset(); tokens != 0 || len(asked) != 0 {
		t.Errorf("asked again at once: %d token reviews, access %+v", tokens, asked)
	}
	// The denial of healthz expires after 30 s, the grant of proxy after 5 min.
	clock.Step(deniedTTL + time.Second)
	get("/healthz", "good", nil)
	if asked, _ := rv.reset(); len(asked) != 1 || asked[0].ResourceAttributes.Subresource != "healthz" {
		t.Errorf("after 31 s: %+v, want healthz asked again", asked)
	}
	// The token's answer expires after 2 min.
	clock.Step(tokenCacheTTL)
	get("/healthz", "good", nil)
	if _, tokens := rv.reset(); tokens != 1 {
		t.Errorf("after 2 min: %d token reviews, want 1", tokens)
	}

	// A client certificate: CN the user, O the groups.
	apiserver := ca.client(t, "kube-apiserver", "system:masters")
	if code, body := get("/pods", "", &apiserver); code != http.StatusOK || !strings.Contains(body, `"name":"web"`) {
		t.Errorf("apiserver's /pods: %d %s", code, body)
	}
	if asked, _ := rv.reset(); len(asked) != 1 || asked[0].User != "kube-apiserver" || asked[0].Groups[0] != "system:masters" {
		t.Errorf("apiserver's reviews %+v", asked)
	}
	alice := ca.client(t, "alice")
	code, body := get("/pods", "", &alice)
	if code != http.StatusForbidden || !strings.Contains(body, "user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy]") {
		t.Errorf("alice's /pods: %d %q", code, body)
	}
}
