package image

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-project/berth/cri/errdefs"
)

// endpoint is one place a pull may fetch a reference from: a mirror, or
// the registry the reference names.
type endpoint struct {
	// label names it in errors: "mirror http://127.0.0.1:5000",
	// "registry docker.io".
	label string
	// host is the host[:port] requests go to, canonical, for matching
	// credentials to it.
	host string
	// ref is the reference as this endpoint serves it.
	ref name.Reference
	// transport speaks to it, refusing plain HTTP unless allowed.
	transport http.RoundTripper
}

// endpoints lists where a normalised reference can be pulled from: the
// registry's mirrors in their configured order, then the registry.
func (r *registryHosts) endpoints(norm string) ([]endpoint, error) {
	parsed, err := name.ParseReference(norm)
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid image reference %q: %v", norm, err)
	}
	registry := canonicalHost(parsed.Context().RegistryStr())
	repo := parsed.Context().RepositoryStr()
	ident := ":" + parsed.Identifier()
	if d, ok := parsed.(name.Digest); ok {
		ident = "@" + d.DigestStr()
	}
	hc := r.lookup(registry)
	var eps []endpoint
	if hc != nil {
		for _, m := range hc.mirrors {
			ep, err := r.mirrorEndpoint(m, repo, ident)
			if err != nil {
				return nil, err
			}
			eps = append(eps, ep)
		}
	}
	var opts []name.Option
	insecure := hc != nil && hc.insecure
	if insecure {
		opts = append(opts, name.Insecure)
	}
	upstream, err := name.ParseReference(norm, opts...)
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid image reference %q: %v", norm, err)
	}
	return append(eps, endpoint{
		label:     "registry " + registry,
		host:      registry,
		ref:       upstream,
		transport: schemeGuard{inner: hc.roundTripper(), allowHTTP: insecure},
	}), nil
}

// mirrorEndpoint maps a repository onto a mirror: the same path below the
// mirror's prefix. A TLS mirror is verified as its own host's entry says.
func (r *registryHosts) mirrorEndpoint(m *url.URL, repo, ident string) (endpoint, error) {
	plain := m.Scheme == "http"
	var opts []name.Option
	if plain {
		opts = append(opts, name.Insecure)
	}
	refStr := m.Host + "/" + path.Join(m.Path, repo) + ident
	ref, err := name.ParseReference(refStr, opts...)
	if err != nil {
		return endpoint{}, errdefs.InvalidArgument("mirror %s cannot serve %s: %v", m, repo, err)
	}
	return endpoint{
		label:     "mirror " + m.String(),
		host:      canonicalHost(m.Host),
		ref:       ref,
		transport: schemeGuard{inner: r.lookup(m.Host).roundTripper(), allowHTTP: plain},
	}, nil
}

// roundTripper is the transport with hc's TLS settings.
func (hc *hostConfig) roundTripper() http.RoundTripper {
	if hc == nil || hc.transport == nil {
		return defaultTransport
	}
	return hc.transport
}

// schemeGuard refuses plain HTTP unless the endpoint allows it.
// go-containerregistry falls back to HTTP for localhost and private
// addresses on its own; berth allows it only where the configuration
// says so, so that a typo never sends credentials in clear text.
type schemeGuard struct {
	inner     http.RoundTripper
	allowHTTP bool
}

func (g schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &plainHTTPError{host: req.URL.Host}
	}
	return g.inner.RoundTrip(req)
}

// plainHTTPError is a request over plain HTTP that the configuration does
// not allow.
type plainHTTPError struct{ host string }

func (e *plainHTTPError) Error() string {
	return fmt.Sprintf("plain HTTP to %s refused: the registry is not configured as insecure", e.host)
}

// Auth is the credentials a pull presents, as the CRI's AuthConfig gives
// them. One of: Username and Password; Auth (base64 "user:password");
// IdentityToken (exchanged for a registry token); RegistryToken (a bearer
// token). With ServerAddress set, they are presented only to that host
// (a scheme and path in it are ignored); without, to every endpoint of
// the pull, mirrors included, as containerd does.
type Auth struct {
	Username      string
	Password      string
	Auth          string
	IdentityToken string
	RegistryToken string
	ServerAddress string
}

// authenticator returns what to present to host. Errors (a malformed
// Auth field) are of class errdefs.ErrInvalidArgument.
func (a *Auth) authenticator(host string) (authn.Authenticator, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if cfg == (authn.AuthConfig{}) || (a.ServerAddress != "" && serverHost(a.ServerAddress) != canonicalHost(host)) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}

// config decodes the credentials; no credentials is the zero value.
func (a *Auth) config() (authn.AuthConfig, error) {
	if a == nil {
		return authn.AuthConfig{}, nil
	}
	cfg := authn.AuthConfig{
		Username: a.Username, Password: a.Password,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	}
	if a.Auth != "" && a.Username == "" && a.Password == "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return cfg, errdefs.InvalidArgument("auth: the auth field is not base64: %v", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return cfg, errdefs.InvalidArgument("auth: the auth field does not decode to user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	return cfg, nil
}

// serverHost reduces a ServerAddress ("https://index.docker.io/v1/",
// "registry.example.com:5000") to its canonical host.
func serverHost(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	return canonicalHost(addr)
}
