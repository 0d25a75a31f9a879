package image

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"

	"github.com/berth-project/berth/cri/errdefs"
)

// RegistryConfig says how pulls reach registries. berthd reads it from a
// file (LoadRegistryConfig) and hands it to SetRegistries. A registry
// without an entry is reached over HTTPS, with the system's CAs, and no
// mirrors.
type RegistryConfig struct {
	// Registries maps a registry host ("docker.io", "registry.k8s.io",
	// "127.0.0.1:5000") to its settings. A "host:port" key applies to
	// that port only; a bare host applies to every port without an entry
	// of its own. "index.docker.io" and "registry-1.docker.io" mean
	// "docker.io".
	Registries map[string]RegistryHost `json:"registries"`
}

// RegistryHost is the configuration of one registry.
type RegistryHost struct {
	// Mirrors are endpoints "http://host:port[/prefix]" or
	// "https://host[:port][/prefix]", tried in order before the registry
	// itself. A repository maps unchanged below the prefix:
	// registry.k8s.io/pause:3.10 through the mirror http://127.0.0.1:5000
	// is 127.0.0.1:5000/pause:3.10. The scheme decides plain HTTP or TLS;
	// a TLS mirror is verified as its own entry in Registries says.
	Mirrors []string `json:"mirrors,omitempty"`
	// Insecure allows plain HTTP to this registry. Without it berth
	// speaks only HTTPS, even to localhost.
	Insecure bool `json:"insecure,omitempty"`
	// SkipVerify speaks TLS without verifying the certificate.
	SkipVerify bool `json:"skipVerify,omitempty"`
	// CAFiles are PEM files of CA certificates trusted for this registry
	// in addition to the system's.
	CAFiles []string `json:"caFiles,omitempty"`
}

// LoadRegistryConfig reads a registry configuration file, YAML or JSON:
//
//	registries:
//	  docker.io:
//	    mirrors: ["http://127.0.0.1:5000"]
//	  "127.0.0.1:5000": {insecure: true}
//	  registry.example.com: {caFiles: [/etc/berth/certs/example-ca.pem]}
//
// Unknown fields and bad values (a host that is not one, a mirror that is
// not an http or https URL, a CA file that is unreadable or holds no PEM
// certificate) are errors of class errdefs.ErrInvalidArgument naming the
// file and the field. A missing file is an error too, satisfying
// errors.Is(err, fs.ErrNotExist): only the caller knows whether a file
// was asked for.
func LoadRegistryConfig(path string) (RegistryConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RegistryConfig{}, fmt.Errorf("registry config: %w", err)
	}
	var cfg RegistryConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return RegistryConfig{}, errdefs.InvalidArgument("registry config %s: %v", path, err)
	}
	if _, err := cfg.compile(); err != nil {
		return RegistryConfig{}, errdefs.InvalidArgument("registry config %s: %v", path, err)
	}
	return cfg, nil
}

// SetRegistries validates cfg (as LoadRegistryConfig does) and makes every
// later pull use it; pulls under way finish with the configuration they
// started with. Errors are of class errdefs.ErrInvalidArgument, and leave
// the current configuration in place.
func (s *Store) SetRegistries(cfg RegistryConfig) error {
	hosts, err := cfg.compile()
	if err != nil {
		return errdefs.InvalidArgument("registry config: %v", err)
	}
	if old := s.registries.Swap(hosts); old != nil {
		old.closeIdle()
	}
	return nil
}

// registryHosts is a validated RegistryConfig, ready for pulls. The zero
// value is the empty configuration.
type registryHosts struct {
	hosts map[string]*hostConfig // by canonical key
}

// hostConfig is one registry's settings, checked and compiled.
type hostConfig struct {
	mirrors   []*url.URL
	insecure  bool
	transport *http.Transport // its TLS settings; nil for the default
}

// defaultTransport reaches registries without TLS settings of their own.
// It is shared, so connections are reused across pulls.
var defaultTransport = newTransport(nil)

// newTransport is go-containerregistry's default transport (proxy from
// the environment, timeouts, HTTP/2) with the given TLS settings.
func newTransport(tlsConfig *tls.Config) *http.Transport {
	t, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		t = http.DefaultTransport.(*http.Transport)
	}
	t = t.Clone()
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig
	}
	return t
}

// compile validates the configuration and builds what pulls use. Errors
// name the field: registries["docker.io"].mirrors[0].
func (cfg RegistryConfig) compile() (*registryHosts, error) {
	hosts := &registryHosts{hosts: map[string]*hostConfig{}}
	keys := make([]string, 0, len(cfg.Registries))
	for k := range cfg.Registries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, key := range keys {
		h := cfg.Registries[key]
		field := fmt.Sprintf("registries[%q]", key)
		canon, err := canonicalHostKey(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", field, err))
			continue
		}
		if _, dup := hosts.hosts[canon]; dup {
			errs = append(errs, fmt.Errorf("%s: %s is configured twice", field, canon))
			continue
		}
		hc, err := compileHost(field, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hosts.hosts[canon] = hc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return hosts, nil
}

func compileHost(field string, h RegistryHost) (*hostConfig, error) {
	hc := &hostConfig{insecure: h.Insecure}
	var errs []error
	for i, m := range h.Mirrors {
		u, err := parseMirror(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.mirrors[%d]: %q: %v", field, i, m, err))
			continue
		}
		hc.mirrors = append(hc.mirrors, u)
	}
	if len(h.CAFiles) > 0 || h.SkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: h.SkipVerify}
		if len(h.CAFiles) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			for i, f := range h.CAFiles {
				if err := addCAFile(pool, f); err != nil {
					errs = append(errs, fmt.Errorf("%s.caFiles[%d]: %v", field, i, err))
				}
			}
			tc.RootCAs = pool
		}
		hc.transport = newTransport(tc)
	}
	return hc, errors.Join(errs...)
}

// addCAFile adds the certificates of a PEM file, which must hold at least
// one and nothing that does not parse.
func addCAFile(pool *x509.CertPool, path string) error {
	if path == "" {
		return errors.New("empty path")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// parseMirror checks a mirror endpoint: http or https, a host, an
// optional path prefix that is a valid repository path, nothing else.
func parseMirror(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("want scheme://host[:port][/prefix] and nothing else")
	}
	if _, err := canonicalHostKey(u.Host); err != nil {
		return nil, err
	}
	u.Path = strings.Trim(u.Path, "/")
	u.RawPath = ""
	probe := u.Host + "/" + strings.TrimPrefix(u.Path+"/x", "/")
	if _, err := name.NewRepository(probe); err != nil {
		return nil, fmt.Errorf("prefix %q is not a repository path: %v", u.Path, err)
	}
	return u, nil
}

// canonicalHostKey checks a registry key, "host" or "host:port", and
// returns it in the form references use: lower case, Docker Hub's
// aliases folded into "docker.io".
func canonicalHostKey(key string) (string, error) {
	k := strings.ToLower(key)
	if k == "" || strings.ContainsAny(k, "/@ ") {
		return "", errors.New("want a registry host or host:port")
	}
	host, port := k, ""
	if h, p, err := net.SplitHostPort(k); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return "", fmt.Errorf("bad port %q", port)
		}
	}
	if host == "" || strings.Contains(strings.Trim(host, "[]"), "[") {
		return "", errors.New("want a registry host or host:port")
	}
	if _, err := name.NewRegistry(k, name.StrictValidation); err != nil {
		return "", err
	}
	return canonicalHost(k), nil
}

// canonicalHost folds Docker Hub's names into "docker.io", the name
// normalised references use.
func canonicalHost(host string) string {
	switch host = strings.ToLower(host); host {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return host
}

// lookup returns the settings for a registry host (host:port first, then
// the bare host), or nil.
func (r *registryHosts) lookup(host string) *hostConfig {
	host = canonicalHost(host)
	if hc, ok := r.hosts[host]; ok {
		return hc
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return r.hosts[h]
	}
	return nil
}

// closeIdle lets go of the idle connections of a replaced configuration.
func (r *registryHosts) closeIdle() {
	for _, hc := range r.hosts {
		if hc.transport != nil {
			hc.transport.CloseIdleConnections()
		}
	}
}
