package harness

import (
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
)

// CountingProxy is a plain-HTTP reverse proxy in front of a Registry that
// counts the blob downloads passing through it, so a test can see which
// layers a client fetched. Clients name it by Host, as a registry of its
// own.
type CountingProxy struct {
	Host string // "127.0.0.1:<port>"

	srv    *http.Server
	served chan error

	mu       sync.Mutex
	blobGets map[string]int // blob digest → GET requests
	stall    chan struct{}  // closed to let stalled blob GETs go; nil: none stall
}

// blobPath matches GET /v2/<repository>/blobs/<digest>.
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/(sha256:[0-9a-f]{64})$`)

// StartCountingProxy starts a proxy to r on a free port of 127.0.0.1.
// Close stops it.
func (r *Registry) StartCountingProxy() (*CountingProxy, error) {
	target, err := url.Parse(r.URL())
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CountingProxy{Host: ln.Addr().String(), served: make(chan error, 1), blobGets: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: r.transport,
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil && req.Method == http.MethodGet {
			p.mu.Lock()
			p.blobGets[m[1]]++
			stall := p.stall
			p.mu.Unlock()
			if stall != nil {
				select {
				case <-stall:
				case <-req.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, req)
	})}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

// BlobGets returns, per blob digest ("sha256:…"), how many GET requests
// for it have passed through the proxy so far.
func (p *CountingProxy) BlobGets() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.blobGets)
}

// Stall holds every blob download from now on, as a registry that
// stopped sending would, until Release.
func (p *CountingProxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
}

// Release lets the stalled blob downloads go on.
func (p *CountingProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
}

// Close stops the proxy and waits for its server to end.
func (p *CountingProxy) Close() error {
	err := p.srv.Close()
	if serr := <-p.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
