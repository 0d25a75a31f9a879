package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/berth-project/berth/pkg/diskusage"
)

// Config is what the server needs. All of it is required, but for
// ClientCAs, Metrics, ProbeMetrics and Clock.
type Config struct {
	// NodeName is the Node the API is authorized as: nodes/<NodeName>.
	NodeName string
	// Listener is where the API is served, TLS on top; nil serves only
	// the read-only port (a node without a control plane to review its
	// callers).
	Listener net.Listener
	// ReadOnlyListener, if set, serves kubelet's read-only port: the
	// API's reads of pods, stats and metrics over plain HTTP, to anyone.
	ReadOnlyListener net.Listener
	// Certificate is the serving certificate (see ServingCertificate);
	// with Tokens and Access it is needed only with a Listener.
	Certificate tls.Certificate
	// ClientCAs verify client certificates; nil trusts none, and only
	// bearer tokens authenticate.
	ClientCAs *x509.CertPool
	Tokens    TokenReviewer
	Access    AccessReviewer

	Pods             PodLister
	Containers       ContainerRuntime
	Streams          StreamRuntime
	Stats            StatsRuntime
	ImageFS          ImageFS
	ContainerMetrics MetricsRuntime
	// RootDir is berth's root: its filesystem is the node's in the
	// summary. PodDir holds the pods' emptyDirs
	// (<PodDir>/<uid>/volumes/empty-dir/<name>) and PodLogsDir their
	// logs (<PodLogsDir>/<ns>_<name>_<uid>/<container>), measured for the
	// summary's volume, log and ephemeral storage figures ("": none).
	RootDir, PodDir, PodLogsDir string
	// Metrics is served on /metrics (berth's registry, with the Go and
	// process collectors), ProbeMetrics on /metrics/probes.
	Metrics, ProbeMetrics prometheus.Gatherer

	Clock clock.PassiveClock
	Log   *slog.Logger
}

// Server is kubelet's API for this node.
type Server struct {
	cfg   Config
	authn *authenticator
	authz *authorizer
	node  *nodeStats
	disk  *diskusage.Cache
	mux   *http.ServeMux
	// readOnly is the read-only port's subset of mux.
	readOnly *http.ServeMux
}

// New checks cfg and returns the server; nothing is served before Run.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.NodeName == "":
		return nil, errors.New("kubelet API: a node name is required")
	case cfg.Listener == nil && cfg.ReadOnlyListener == nil:
		return nil, errors.New("kubelet API: a listener is required")
	case cfg.Listener != nil && len(cfg.Certificate.Certificate) == 0:
		return nil, errors.New("kubelet API: a serving certificate is required")
	case cfg.Listener != nil && (cfg.Tokens == nil || cfg.Access == nil):
		return nil, errors.New("kubelet API: token and access reviewers are required")
	case cfg.Pods == nil || cfg.Containers == nil || cfg.Streams == nil || cfg.Stats == nil || cfg.ImageFS == nil || cfg.ContainerMetrics == nil:
		return nil, errors.New("kubelet API: the pods and the runtime are required")
	case cfg.RootDir == "":
		return nil, errors.New("kubelet API: the root directory is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	node, err := newNodeStats(cfg.RootDir, cfg.ImageFS, cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	s := &Server{cfg: cfg, node: node, disk: &diskusage.Cache{TTL: 10 * time.Second, Now: cfg.Clock.Now},
		authn: newAuthenticator(cfg.ClientCAs, cfg.Tokens, cfg.Clock),
		authz: newAuthorizer(cfg.NodeName, cfg.Access, cfg.Clock)}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux, s.readOnly = http.NewServeMux(), http.NewServeMux()
	both := func(pattern string, h http.Handler) {
		s.mux.Handle(pattern, h)
		s.readOnly.Handle(pattern, h)
	}
	both("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	both("GET /pods", http.HandlerFunc(s.servePods))
	s.mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, tail := range []string{"/{namespace}/{pod}/{container}", "/{namespace}/{pod}/{uid}/{container}"} {
			s.mux.HandleFunc(method+" /exec"+tail, s.serveExec)
			s.mux.HandleFunc(method+" /attach"+tail, s.serveAttach)
		}
		for _, tail := range []string{"/{namespace}/{pod}", "/{namespace}/{pod}/{uid}"} {
			s.mux.HandleFunc(method+" /portForward"+tail, s.servePortForward)
		}
	}
	s.mux.HandleFunc("POST /run/{namespace}/{pod}/{container}", s.serveRun)
	s.mux.HandleFunc("POST /run/{namespace}/{pod}/{uid}/{container}", s.serveRun)
	both("GET /stats/summary", http.HandlerFunc(s.serveSummary))
	if s.cfg.Metrics != nil {
		both("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	if s.cfg.ProbeMetrics != nil {
		both("GET /metrics/probes", promhttp.HandlerFor(s.cfg.ProbeMetrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	cadvisor := &criMetrics{rt: s.cfg.ContainerMetrics}
	both("GET /metrics/cadvisor", http.HandlerFunc(cadvisor.serveHTTP))
}

// Handler is the API behind its authentication and authorization.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.authn.authenticate(r)
		if err != nil {
			s.cfg.Log.Debug("kubelet API: unauthenticated", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		verb, subresources := requestVerb(r.Method), requestSubresources(r.URL.Path)
		for _, sub := range subresources {
			ok, err := s.authz.allowed(r.Context(), u, verb, sub)
			if err != nil {
				s.cfg.Log.Warn("kubelet API: authorization", "user", u.name, "path", r.URL.Path, "err", err)
				http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, resource=nodes, subresource=%s)", u.name, verb, sub),
					http.StatusInternalServerError)
				return
			}
			if ok {
				s.mux.ServeHTTP(w, r)
				return
			}
		}
		s.cfg.Log.Debug("kubelet API: forbidden", "user", u.name, "verb", verb, "subresources", subresources, "path", r.URL.Path)
		http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource(s)=%v)", u.name, verb, subresources),
			http.StatusForbidden)
	})
}

// Run serves until ctx ends; it returns nil then.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler: s.Handler(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{s.cfg.Certificate},
			// Verified by the authenticator, so that a bad certificate is a
			// 401 (or falls back to a token) rather than a failed handshake.
			ClientAuth: tls.RequestClientCert,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	s.node.prime()
	if l := s.cfg.ReadOnlyListener; l != nil {
		ro := &http.Server{Handler: s.readOnly, ReadHeaderTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug)}
		go func() {
			<-ctx.Done()
			ro.Close()
		}()
		go func() {
			s.cfg.Log.Warn("kubelet read-only port serving, without authentication", "address", l.Addr().String())
			if err := ro.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				s.cfg.Log.Error("kubelet read-only port stopped", "err", err)
			}
		}()
	}
	if s.cfg.Listener == nil {
		<-ctx.Done()
		return nil
	}
	s.cfg.Log.Info("kubelet API serving", "address", s.cfg.Listener.Addr().String())
	if err := srv.ServeTLS(s.cfg.Listener, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubelet API: %w", err)
	}
	return nil
}
