package streaming

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criserver "k8s.io/cri-streaming/pkg/streaming"
)

// DefaultIdleTimeout ends a session after this long without traffic, as
// containerd's stream_idle_timeout does by default.
const DefaultIdleTimeout = 4 * time.Hour

// Runtime runs the sessions: it is called with the streams of each one and
// returns when the session is over. Exec reports a non-zero exit code as
// a k8s.io/utils/exec.ExitError, which the server passes on to the client.
type Runtime = criserver.Runtime

// Config says where and how the server serves.
type Config struct {
	// Listener is where the server accepts connections (plain HTTP). Its
	// address is the host of the URLs handed out, so it should be one
	// the clients can reach; berthd listens on loopback by default.
	Listener net.Listener
	// IdleTimeout ends a session without traffic; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Server hands out session URLs and serves them.
type Server struct {
	sessions criserver.Server
	listener net.Listener
}

// New returns a server for rt on cfg.Listener. It serves nothing until
// Run.
func New(cfg Config, rt Runtime) (*Server, error) {
	if cfg.Listener == nil {
		return nil, errors.New("streaming: a listener is required")
	}
	if rt == nil {
		return nil, errors.New("streaming: a runtime is required")
	}
	c := criserver.DefaultConfig
	c.Addr = cfg.Listener.Addr().String()
	// The URL names the address actually bound (port 0 picks one).
	c.BaseURL = &url.URL{Scheme: "http", Host: c.Addr}
	if cfg.IdleTimeout > 0 {
		c.StreamIdleTimeout = cfg.IdleTimeout
	}
	sessions, err := criserver.NewServer(c, rt)
	if err != nil {
		return nil, err
	}
	return &Server{sessions: sessions, listener: cfg.Listener}, nil
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// GetExec registers an exec session and returns its URL. The request must
// have been validated.
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.sessions.GetExec(req)
}

// GetAttach registers an attach session and returns its URL.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.sessions.GetAttach(req)
}

// GetPortForward registers a port-forward session and returns its URL.
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.sessions.GetPortForward(req)
}

// Run serves until ctx ends, then closes the listener and every session.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{Handler: s.sessions, ReadHeaderTimeout: time.Minute}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(s.listener)
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return err
}
