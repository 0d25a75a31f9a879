package kubeletapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StreamRuntime is the slice of the CRI that exec, attach and
// port-forward need: each of the first three returns at once with the URL
// of a session on the runtime's streaming server, which starts when the
// request proxied to it connects.
type StreamRuntime interface {
	Exec(ctx context.Context, in *runtimeapi.ExecRequest, opts ...grpc.CallOption) (*runtimeapi.ExecResponse, error)
	Attach(ctx context.Context, in *runtimeapi.AttachRequest, opts ...grpc.CallOption) (*runtimeapi.AttachResponse, error)
	PortForward(ctx context.Context, in *runtimeapi.PortForwardRequest, opts ...grpc.CallOption) (*runtimeapi.PortForwardResponse, error)
	// ListPodSandbox finds the sandbox a port-forward enters.
	ListPodSandbox(ctx context.Context, in *runtimeapi.ListPodSandboxRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error)
}

// streamOpts are the streams an exec or attach asks for, as kubelet's
// remotecommand server reads them.
type streamOpts struct {
	stdin, stdout, stderr, tty bool
}

func parseStreamOpts(r *http.Request) (streamOpts, error) {
	o := streamOpts{
		stdin:  r.FormValue(v1.ExecStdinParam) == "1",
		stdout: r.FormValue(v1.ExecStdoutParam) == "1",
		stderr: r.FormValue(v1.ExecStderrParam) == "1",
		tty:    r.FormValue(v1.ExecTTYParam) == "1",
	}
	if o.tty {
		o.stderr = false // a terminal has one output stream
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errorf(http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// runningTarget is the running container an exec, attach or run names.
func (s *Server) runningTarget(r *http.Request) (*v1.Pod, string, error) {
	pod, err := s.pod(r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"))
	if err != nil {
		return nil, "", err
	}
	id, err := runningContainer(pod, r.PathValue("container"))
	return pod, id, err
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	s.serveStream(w, r, "exec in", func(id string, o streamOpts) (string, error) {
		resp, err := s.cfg.Streams.Exec(r.Context(), &runtimeapi.ExecRequest{ContainerId: id, Cmd: r.URL.Query()[v1.ExecCommandParam],
			Stdin: o.stdin, Stdout: o.stdout, Stderr: o.stderr, Tty: o.tty})
		return resp.GetUrl(), err
	})
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	s.serveStream(w, r, "attach to", func(id string, o streamOpts) (string, error) {
		resp, err := s.cfg.Streams.Attach(r.Context(), &runtimeapi.AttachRequest{ContainerId: id,
			Stdin: o.stdin, Stdout: o.stdout, Stderr: o.stderr, Tty: o.tty})
		return resp.GetUrl(), err
	})
}

// serveStream finds the running container a request names, asks the
// runtime for a streaming URL and proxies the request to it.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, verb string, streamURL func(id string, o streamOpts) (string, error)) {
	o, err := parseStreamOpts(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pod, id, err := s.runningTarget(r)
	if err != nil {
		writeError(w, err)
		return
	}
	u, err := streamURL(id, o)
	if err != nil {
		writeError(w, runtimeError(err, verb+" container %q of pod %s/%s", r.PathValue("container"), pod.Namespace, pod.Name))
		return
	}
	s.proxyStream(w, r, u)
}

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	// SPDY clients name the ports in their streams, websocket ones here.
	var ports []int32
	for _, p := range r.URL.Query()[v1.PortHeader] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			writeError(w, errorf(http.StatusBadRequest, "port %q: must be a number from 1 to 65535", p))
			return
		}
		ports = append(ports, int32(n))
	}
	pod, err := s.pod(r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"))
	if err != nil {
		writeError(w, err)
		return
	}
	sandboxes, err := s.cfg.Streams.ListPodSandbox(r.Context(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{labelPodUID: string(pod.UID)},
	}})
	if err != nil {
		writeError(w, runtimeError(err, "sandbox of pod %s/%s", pod.Namespace, pod.Name))
		return
	}
	if len(sandboxes.GetItems()) == 0 {
		writeError(w, errorf(http.StatusNotFound, "pod %s/%s has no running sandbox", pod.Namespace, pod.Name))
		return
	}
	resp, err := s.cfg.Streams.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sandboxes.GetItems()[0].GetId(), Port: ports})
	if err != nil {
		writeError(w, runtimeError(err, "port-forward to pod %s/%s", pod.Namespace, pod.Name))
		return
	}
	s.proxyStream(w, r, resp.GetUrl())
}

// serveRun answers /run: the cmd form value (split at spaces, as kubelet
// splits it) run to its end in the container; its stdout then stderr.
func (s *Server) serveRun(w http.ResponseWriter, r *http.Request) {
	pod, id, err := s.runningTarget(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cmd := strings.Split(r.FormValue("cmd"), " ")
	resp, err := s.cfg.Containers.ExecSync(r.Context(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd})
	if err != nil {
		writeError(w, runtimeError(err, "run %q in container %q of pod %s/%s", cmd, r.PathValue("container"), pod.Namespace, pod.Name))
		return
	}
	if code := resp.GetExitCode(); code != 0 {
		writeError(w, fmt.Errorf("command %q exited with %d: %s", cmd, code, resp.GetStderr()))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(append(resp.GetStdout(), resp.GetStderr()...))
}

// runtimeError is a CRI error as an HTTP one, with what was asked.
func runtimeError(err error, format string, args ...any) error {
	code := http.StatusInternalServerError
	switch status.Code(err) {
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.InvalidArgument, codes.FailedPrecondition:
		code = http.StatusBadRequest
	case codes.ResourceExhausted:
		code = http.StatusTooManyRequests
	case codes.Unavailable:
		code = http.StatusServiceUnavailable
	}
	return errorf(code, "%s: %s", fmt.Sprintf(format, args...), status.Convert(err).Message())
}

// proxyStream hands an upgrade request to the runtime's session URL, as
// kubelet does: the SPDY or websocket upgrade and the streams after it
// pass through; the request's own query goes along when the URL has none.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, rawURL string) {
	if r.Header.Get("Upgrade") == "" || !headerHas(r.Header, "Connection", "upgrade") {
		writeError(w, errorf(http.StatusBadRequest, "Upgrade request required"))
		return
	}
	target, err := url.Parse(rawURL)
	if err != nil || target.Host == "" {
		writeError(w, fmt.Errorf("runtime's streaming URL %q is not absolute: %v", rawURL, err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *target
			if u.RawQuery == "" {
				u.RawQuery = pr.In.URL.RawQuery
			}
			pr.Out.URL, pr.Out.Host = &u, u.Host
			pr.Out.Header.Del("Authorization")
		},
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.cfg.Log.Warn("proxying a stream to the runtime", "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
		},
	}
	proxy.ServeHTTP(w, r)
}

// headerHas says whether a comma-separated header lists token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
