package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Outcome is one run of a handler: whether it passed, and what it said
// (the command's output, the HTTP status, the error).
type Outcome struct {
	OK     bool
	Output string
}

// userAgent is what kubelet sends, so that servers that single out
// probes in their logs recognise these.
const userAgent = "kube-probe/1.37"

// maxBody is how much of a response is read: enough for a message, never
// a download.
const maxBody = 10 << 10

// execer runs a command in a container: the CRI's ExecSync.
type execer interface {
	ExecSync(ctx context.Context, in *runtimeapi.ExecSyncRequest, opts ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error)
}

// Exec runs cmd in the container; it passes when the command exits 0
// within timeout (0: no limit).
func Exec(ctx context.Context, rt execer, containerID string, cmd []string, timeout time.Duration) (Outcome, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		// The runtime enforces the timeout; the context only bounds a
		// runtime that does not answer.
		ctx, cancel = context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
	}
	resp, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: containerID, Cmd: cmd, Timeout: int64(timeout / time.Second)})
	if err != nil {
		if status.Code(err) == codes.DeadlineExceeded {
			return Outcome{Output: fmt.Sprintf("command %q timed out after %s", strings.Join(cmd, " "), timeout)}, nil
		}
		return Outcome{}, fmt.Errorf("exec in container %s: %w", containerID, err)
	}
	out := string(resp.GetStdout()) + string(resp.GetStderr())
	if len(out) > maxBody {
		out = out[:maxBody]
	}
	if resp.GetExitCode() != 0 {
		if out == "" {
			out = fmt.Sprintf("command %q exited with %d", strings.Join(cmd, " "), resp.GetExitCode())
		}
		return Outcome{Output: out}, nil
	}
	return Outcome{OK: true, Output: out}, nil
}

// HTTPGet fetches the URL of an httpGet handler without keep-alive and
// without verifying certificates, as kubelet: a status from 200 to 399
// passes. Redirects are followed to the same host only; a redirect
// elsewhere passes, with a warning in the output.
func HTTPGet(ctx context.Context, h *v1.HTTPGetAction, podIP string, ports []v1.ContainerPort, timeout time.Duration) (Outcome, error) {
	u, err := httpURL(h, podIP, ports)
	if err != nil {
		return Outcome{}, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Outcome{}, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	redirectedAway := ""
	client := &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			Proxy:             nil,
		},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Hostname() != u.Hostname() {
				redirectedAway = r.URL.String()
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return Outcome{Output: err.Error()}, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if redirectedAway != "" {
		return Outcome{OK: true, Output: fmt.Sprintf("probe terminated redirects to %s; response %d", redirectedAway, resp.StatusCode)}, nil
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Outcome{OK: true, Output: string(body)}, nil
	}
	return Outcome{Output: fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)}, nil
}

// httpURL is the address an httpGet handler asks for: its host or the
// pod's IP, its port by number or by the name of a container port.
func httpURL(h *v1.HTTPGetAction, podIP string, ports []v1.ContainerPort) (*url.URL, error) {
	port, err := resolvePort(h.Port, ports)
	if err != nil {
		return nil, err
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return nil, errors.New("the pod has no IP address yet")
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path)
	if err != nil {
		return nil, fmt.Errorf("httpGet: %w", err)
	}
	return u, nil
}

// TCP passes when a connection to the port opens within timeout.
func TCP(ctx context.Context, h *v1.TCPSocketAction, podIP string, ports []v1.ContainerPort, timeout time.Duration) (Outcome, error) {
	port, err := resolvePort(h.Port, ports)
	if err != nil {
		return Outcome{}, err
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Outcome{Output: err.Error()}, nil
	}
	conn.Close()
	return Outcome{OK: true}, nil
}

// GRPC asks the standard grpc.health.v1 service; it passes on SERVING.
func GRPC(ctx context.Context, h *v1.GRPCAction, podIP string, timeout time.Duration) (Outcome, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := grpc.NewClient(net.JoinHostPort(podIP, strconv.Itoa(int(h.Port))),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(userAgent))
	if err != nil {
		return Outcome{}, err
	}
	defer conn.Close()
	service := ""
	if h.Service != nil {
		service = *h.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return Outcome{Output: "this server does not implement the grpc health protocol (grpc.health.v1.Health)"}, nil
		}
		return Outcome{Output: fmt.Sprintf("rpc error: %v", err)}, nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Outcome{Output: "service unhealthy (responded with \"" + resp.GetStatus().String() + "\")"}, nil
	}
	return Outcome{OK: true}, nil
}

func resolvePort(p intstr.IntOrString, ports []v1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}
