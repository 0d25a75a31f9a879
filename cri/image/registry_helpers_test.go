package image

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pull tests run go-containerregistry's in-process registry behind an
// httptest server, with middleware that counts requests or misbehaves on
// demand.

// middleware wraps the registry handler.
type middleware func(http.Handler) http.Handler

// testRegistry is one registry for one test.
type testRegistry struct {
	t    *testing.T
	srv  *httptest.Server
	host string // 127.0.0.1:port

	mu        sync.Mutex
	blobGets  map[string]int // by digest
	manifests int            // manifest GETs
	user      string         // push credentials, when basic auth is demanded
	pass      string
}

type registryOption func(*registryOptions)

type registryOptions struct {
	tls         bool
	middlewares []middleware
	user, pass  string
}

func withTLS() registryOption { return func(o *registryOptions) { o.tls = true } }

func withMiddleware(m middleware) registryOption {
	return func(o *registryOptions) { o.middlewares = append(o.middlewares, m) }
}

// withBasicAuth demands these credentials on every request.
func withBasicAuth(user, pass string) registryOption {
	return func(o *registryOptions) { o.user, o.pass = user, pass }
}

func newTestRegistry(t *testing.T, opts ...registryOption) *testRegistry {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &testRegistry{t: t, blobGets: map[string]int{}, user: o.user, pass: o.pass}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	for _, m := range o.middlewares {
		h = m(h)
	}
	if o.user != "" {
		h = basicAuth(o.user, o.pass)(h)
	}
	h = r.count(h)
	if o.tls {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(strings.TrimPrefix(r.srv.URL, "http://"), "https://")
	return r
}

// count records blob and manifest GETs.
func (r *testRegistry) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			r.mu.Lock()
			if d, ok := blobDigest(req); ok {
				r.blobGets[d]++
			} else if strings.Contains(req.URL.Path, "/manifests/") {
				r.manifests++
			}
			r.mu.Unlock()
		}
		next.ServeHTTP(w, req)
	})
}

// blobDigest is the digest a blob request asks for.
func blobDigest(req *http.Request) (string, bool) {
	i := strings.Index(req.URL.Path, "/blobs/sha256:")
	if i < 0 {
		return "", false
	}
	return req.URL.Path[i+len("/blobs/"):], true
}

// counts returns the blob GETs by digest and the manifest GETs, and
// resets them.
func (r *testRegistry) counts() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, m := r.blobGets, r.manifests
	r.blobGets, r.manifests = map[string]int{}, 0
	return b, m
}

func (r *testRegistry) pushOptions() []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.srv.Client().Transport)}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	return opts
}

func (r *testRegistry) parse(path string) name.Reference {
	r.t.Helper()
	ref, err := name.ParseReference(r.host+"/"+path, name.Insecure)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

// push uploads img as path ("team/app:1") and returns its manifest digest.
func (r *testRegistry) push(path string, img v1.Image) string {
	r.t.Helper()
	if err := remote.Write(r.parse(path), img, r.pushOptions()...); err != nil {
		r.t.Fatalf("push %s: %v", path, err)
	}
	d, err := img.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	r.counts()
	return d.String()
}

// pushIndex uploads an index as path and returns its digest.
func (r *testRegistry) pushIndex(path string, idx v1.ImageIndex) string {
	r.t.Helper()
	if err := remote.WriteIndex(r.parse(path), idx, r.pushOptions()...); err != nil {
		r.t.Fatalf("push index %s: %v", path, err)
	}
	d, err := idx.Digest()
	if err != nil {
		r.t.Fatal(err)
	}
	r.counts()
	return d.String()
}

// ref is the full reference of path on this registry.
func (r *testRegistry) ref(path string) string { return r.host + "/" + path }

// caFile writes the TLS server's certificate as a PEM file.
func (r *testRegistry) caFile() string {
	r.t.Helper()
	p := filepath.Join(r.t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func basicAuth(user, pass string) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
}

// corruptBlobs flips a byte in the blobs with these digests.
func corruptBlobs(digests ...string) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			d, ok := blobDigest(req)
			if !ok || req.Method != http.MethodGet || !slices.Contains(digests, d) {
				next.ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

// stall serves half of the blob with this digest and then hangs until the
// client goes away, signalling stalled each time; off turns it off.
type stall struct {
	digest  string
	stalled chan struct{}
	mu      sync.Mutex
	off     bool
}

func newStall(digest string) *stall {
	return &stall{digest: digest, stalled: make(chan struct{}, 10)}
}

func (s *stall) disable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.off = true
}

func (s *stall) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		off := s.off
		s.mu.Unlock()
		d, ok := blobDigest(req)
		if off || !ok || req.Method != http.MethodGet || d != s.digest {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		s.stalled <- struct{}{}
		<-req.Context().Done()
	})
}

// gate holds every blob GET until opened, signalling arrived for the first.
type gate struct {
	open    chan struct{}
	arrived chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{}), arrived: make(chan struct{})} }

func (g *gate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, ok := blobDigest(req); ok && req.Method == http.MethodGet {
			g.once.Do(func() { close(g.arrived) })
			select {
			case <-g.open:
			case <-req.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// insecureStore is a store allowing plain HTTP to the registries.
func insecureStore(t *testing.T, regs ...*testRegistry) *Store {
	t.Helper()
	s := openStore(t)
	cfg := RegistryConfig{Registries: map[string]RegistryHost{}}
	for _, r := range regs {
		cfg.Registries[r.host] = RegistryHost{Insecure: true}
	}
	if err := s.SetRegistries(cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// pullCtx is a context for one pull, bounded so a hang fails the test.
func pullCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPull(t *testing.T, s *Store, ref string, auth *Auth) Image {
	t.Helper()
	img, err := s.Pull(pullCtx(t), ref, auth)
	if err != nil {
		t.Fatalf("Pull(%s): %v", ref, err)
	}
	return img
}

// waiting reports how many callers wait for a pull of key.
func (g *flightGroup) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.calls[key]; ok {
		return f.waiters
	}
	return 0
}

// assertNoLeftovers checks that the store holds no image, blob, layer or
// temporary file.
func assertNoLeftovers(t *testing.T, s *Store) {
	t.Helper()
	if imgs := s.List(); len(imgs) != 0 {
		t.Errorf("List() = %d images, want none", len(imgs))
	}
	for _, dir := range []string{s.layersDir(), s.blobsDir(), s.tmpDir(), s.imagesDir()} {
		if n := dirNames(t, dir); len(n) != 0 {
			t.Errorf("%s holds %v", dir, n)
		}
	}
}
