package kubeletapi

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/cache"
)

// TokenReviewer asks the API server whose a bearer token is.
type TokenReviewer interface {
	// ReviewToken posts a TokenReview of token. It blocks for one API
	// request; an error means no answer (not a rejected token).
	ReviewToken(ctx context.Context, token string) (authenticationv1.TokenReviewStatus, error)
}

// user is who a request comes from.
type user struct {
	name, uid string
	groups    []string
	extra     map[string][]string
}

// tokenCacheTTL is how long a token review's answer is kept: kubelet's
// authentication.webhook.cacheTTL default. Errors are not kept.
const tokenCacheTTL = 2 * time.Minute

// authenticator finds who sent a request, as kubelet's x509 and webhook
// token authenticators do together: a client certificate that the client
// CAs verify, else a bearer token the API server vouches for. Anonymous
// requests are not authenticated (kubeadm's anonymous.enabled=false).
type authenticator struct {
	clientCAs *x509.CertPool // nil: no client certificate is trusted
	tokens    TokenReviewer
	cache     *cache.LRUExpireCache // sha256 of a token → tokenAnswer
}

type tokenAnswer struct {
	user user
	ok   bool
}

func newAuthenticator(clientCAs *x509.CertPool, tokens TokenReviewer, clock cache.Clock) *authenticator {
	return &authenticator{clientCAs: clientCAs, tokens: tokens, cache: cache.NewLRUExpireCacheWithClock(4096, clock)}
}

// errNoCredentials: the request carries neither a certificate nor a token.
var errNoCredentials = errors.New("no client certificate or bearer token")

// authenticate returns the request's user, or why it has none.
func (a *authenticator) authenticate(r *http.Request) (user, error) {
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		u, err := a.verifyCertificate(r.TLS.PeerCertificates)
		if err == nil {
			return u, nil
		}
		certErr = err
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		if certErr != nil {
			return user{}, certErr
		}
		return user{}, errNoCredentials
	}
	return a.reviewToken(r.Context(), token)
}

// verifyCertificate checks a client certificate chain as the API server's
// x509 authenticator does: user CN, groups O.
func (a *authenticator) verifyCertificate(chain []*x509.Certificate) (user, error) {
	if a.clientCAs == nil {
		return user{}, errors.New("client certificate: no client CA configured")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.clientCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return user{}, fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return user{}, errors.New("client certificate without a common name")
	}
	return user{name: leaf.Subject.CommonName, groups: leaf.Subject.Organization}, nil
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (a *authenticator) reviewToken(ctx context.Context, token string) (user, error) {
	key := sha256.Sum256([]byte(token))
	if v, ok := a.cache.Get(key); ok {
		return answerUser(v.(tokenAnswer))
	}
	st, err := a.tokens.ReviewToken(ctx, token)
	if err != nil {
		return user{}, fmt.Errorf("bearer token: %w", err)
	}
	ans := tokenAnswer{ok: st.Authenticated && st.Error == "", user: user{name: st.User.Username, uid: st.User.UID, groups: st.User.Groups}}
	if len(st.User.Extra) > 0 {
		ans.user.extra = map[string][]string{}
		for k, v := range st.User.Extra {
			ans.user.extra[k] = v
		}
	}
	a.cache.Add(key, ans, tokenCacheTTL)
	return answerUser(ans)
}

func answerUser(a tokenAnswer) (user, error) {
	if !a.ok {
		return user{}, errors.New("bearer token not authenticated by the API server")
	}
	return a.user, nil
}
