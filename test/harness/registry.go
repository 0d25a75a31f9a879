package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryBinary is Debian's docker-registry (Distribution 2.8), which
// `make deps` installs.
const RegistryBinary = "/usr/bin/docker-registry"

// RegistryOptions choose how a Registry serves. The zero value is a plain
// HTTP registry without authentication.
type RegistryOptions struct {
	// TLS serves HTTPS with a server certificate (for 127.0.0.1 and
	// localhost) signed by a CA made for this registry alone; clients
	// trust it through Registry.CAFile.
	TLS bool
	// Username and Password, when set, are required of every client
	// (htpasswd basic auth).
	Username, Password string
}

// Registry is one docker-registry serving on 127.0.0.1, with its storage,
// configuration, certificates and log below Dir.
type Registry struct {
	Host     string // "127.0.0.1:<port>", the registry part of references
	Dir      string
	CAFile   string // PEM of the CA that signed the server certificate; TLS only
	Username string
	Password string

	tls       bool
	transport *http.Transport // trusts CAFile
	cmd       *exec.Cmd
	exited    chan struct{}
}

// StartRegistry starts a registry and waits until it answers on /v2/. Call
// Cleanup when done, also when StartRegistry fails.
func StartRegistry(ctx context.Context, opts RegistryOptions) (*Registry, error) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		return nil, fmt.Errorf("%w (install Debian's docker-registry: make deps)", err)
	}
	dir, err := os.MkdirTemp("", "berth-registry")
	if err != nil {
		return nil, err
	}
	r := &Registry{Dir: dir, Username: opts.Username, Password: opts.Password, tls: opts.TLS}
	r.transport = http.DefaultTransport.(*http.Transport).Clone()
	if opts.TLS {
		r.CAFile = filepath.Join(dir, "ca.pem")
		if err := writeTestPKI(dir); err != nil {
			return r, fmt.Errorf("registry certificates: %w", err)
		}
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return r, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		r.transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	if opts.Username != "" {
		line, err := htpasswdLine(opts.Username, opts.Password)
		if err != nil {
			return r, err
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(line), 0o600); err != nil {
			return r, err
		}
	}
	// A free port may be taken between looking and binding: try again.
	for attempt := 0; ; attempt++ {
		addr, err := FreeAddr()
		if err != nil {
			return r, err
		}
		err = r.start(ctx, addr)
		if err == nil || attempt == 2 || !errors.Is(err, errExitedAtStart) {
			return r, err
		}
	}
}

var errExitedAtStart = errors.New("docker-registry exited at start")

func (r *Registry) start(ctx context.Context, addr string) error {
	r.Host = addr
	cfg := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(r.config()), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(r.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(RegistryBinary, "serve", cfg)
	// Settings from the environment (REGISTRY_*) would override the file.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func() { cmd.Wait(); close(r.exited) }()

	client := &http.Client{Transport: r.transport, Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.exited:
			r.cmd = nil
			return fmt.Errorf("%w on %s; see %s", errExitedAtStart, addr, r.LogPath())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("docker-registry did not answer on %s: %v; see %s", addr, err, r.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// config is the registry's configuration file: filesystem storage below
// Dir, no background maintenance; warnings and the access log go to
// LogPath.
func (r *Registry) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
`, filepath.Join(r.Dir, "data"), r.Host, randHex(16))
	if r.tls {
		fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n",
			filepath.Join(r.Dir, "server.pem"), filepath.Join(r.Dir, "server-key.pem"))
	}
	if r.Username != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", filepath.Join(r.Dir, "htpasswd"))
	}
	return b.String()
}

// URL is the registry's base URL, "http://127.0.0.1:<port>" or https.
func (r *Registry) URL() string {
	if r.tls {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// LogPath is the registry's own log, with its access log.
func (r *Registry) LogPath() string { return filepath.Join(r.Dir, "registry.log") }

// Ref is the full reference of a repository path (with tag or digest) in
// this registry: Ref("e2e/app:1") is "127.0.0.1:<port>/e2e/app:1".
func (r *Registry) Ref(path string) string { return r.Host + "/" + path }

// Transport is an HTTP transport that trusts the registry's CA.
func (r *Registry) Transport() http.RoundTripper { return r.transport }

// RemoteOptions are go-containerregistry options for talking to this
// registry: its credentials and a transport trusting its CA.
func (r *Registry) RemoteOptions(ctx context.Context) []remote.Option {
	auth := authn.Anonymous
	if r.Username != "" {
		auth = &authn.Basic{Username: r.Username, Password: r.Password}
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(r.transport)}
}

func (r *Registry) parse(path string) (name.Reference, error) {
	var opts []name.Option
	if !r.tls {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.Ref(path), opts...)
}

// Push uploads img as path ("repo/name:tag") and returns its manifest
// digest.
func (r *Registry) Push(ctx context.Context, path string, img v1.Image) (v1.Hash, error) {
	ref, err := r.parse(path)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img, r.RemoteOptions(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}

// PushIndex uploads a multi-platform index and its images as path and
// returns the index digest.
func (r *Registry) PushIndex(ctx context.Context, path string, idx v1.ImageIndex) (v1.Hash, error) {
	ref, err := r.parse(path)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, r.RemoteOptions(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}

// Digest asks the registry for the manifest (or index) digest that path
// ("repo/name:tag") names, as a client resolving a tag would.
func (r *Registry) Digest(ctx context.Context, path string) (v1.Hash, error) {
	ref, err := r.parse(path)
	if err != nil {
		return v1.Hash{}, err
	}
	desc, err := remote.Head(ref, r.RemoteOptions(ctx)...)
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

// Repositories lists the registry's repositories (its catalog).
func (r *Registry) Repositories(ctx context.Context) ([]string, error) {
	var opts []name.Option
	if !r.tls {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(r.Host, opts...)
	if err != nil {
		return nil, err
	}
	return remote.Catalog(ctx, reg, r.RemoteOptions(ctx)...)
}

// Tags lists the tags of one repository.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	var opts []name.Option
	if !r.tls {
		opts = append(opts, name.Insecure)
	}
	rp, err := name.NewRepository(r.Ref(repo), opts...)
	if err != nil {
		return nil, err
	}
	return remote.List(rp, r.RemoteOptions(ctx)...)
}

// Stop kills the registry and waits for it; its storage stays. Stop is
// idempotent.
func (r *Registry) Stop() {
	if r.cmd == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
}

// Cleanup stops the registry and removes its directory. It is meant for
// defers and works on a Registry that failed to start.
func (r *Registry) Cleanup() error {
	if r == nil {
		return nil
	}
	r.Stop()
	r.transport.CloseIdleConnections()
	return os.RemoveAll(r.Dir)
}

// FreeAddr returns "127.0.0.1:<port>" for a port nothing listens on now:
// for a server to start on, or as a registry that is not there.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
