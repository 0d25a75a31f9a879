package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func TestHTTPGet(t *testing.T) {
	var gotUA, gotHeader, gotHost string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotHeader, gotHost = r.UserAgent(), r.Header.Get("X-Probe"), r.Host
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/here":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
		}
	}))
	defer srv.Close()
	ip, port := hostPort(t, srv.Listener.Addr().String())
	ports := []v1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}
	get := func(path string, p intstr.IntOrString) Outcome {
		t.Helper()
		out, err := HTTPGet(context.Background(), &v1.HTTPGetAction{Path: path, Port: p, Scheme: v1.URISchemeHTTP,
			HTTPHeaders: []v1.HTTPHeader{{Name: "X-Probe", Value: "1"}, {Name: "Host", Value: "example.test"}}}, ip, ports, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := get("/ok", intstr.FromString("web")); !out.OK || len(out.Output) > maxBody {
		t.Errorf("200 by port name: %v, %d bytes kept", out.OK, len(out.Output))
	}
	if gotUA != userAgent || gotHeader != "1" || gotHost != "example.test" {
		t.Errorf("request: user agent %q header %q host %q", gotUA, gotHeader, gotHost)
	}
	if out := get("fail", intstr.FromInt32(int32(port))); out.OK || !strings.Contains(out.Output, "500") {
		t.Errorf("500: %+v", out)
	}
	if out := get("/here", intstr.FromInt32(int32(port))); !out.OK {
		t.Errorf("redirect on the same host: %+v", out)
	}
	if out := get("/away", intstr.FromInt32(int32(port))); !out.OK || !strings.Contains(out.Output, "redirect") {
		t.Errorf("redirect to another host is not followed but passes: %+v", out)
	}
	if _, err := HTTPGet(context.Background(), &v1.HTTPGetAction{Port: intstr.FromString("nope")}, ip, ports, time.Second); err == nil {
		t.Error("unknown port name accepted")
	}
	srv.Close()
	if out := get("/ok", intstr.FromInt32(int32(port))); out.OK {
		t.Error("a closed port passed")
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, port := hostPort(t, l.Addr().String())
	check := func() bool {
		out, err := TCP(context.Background(), &v1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}, ip, nil, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return out.OK
	}
	if !check() {
		t.Error("open port failed")
	}
	l.Close()
	if check() {
		t.Error("closed port passed")
	}
}

func TestGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	defer srv.Stop()
	ip, port := hostPort(t, l.Addr().String())
	check := func(service string) Outcome {
		out, err := GRPC(context.Background(), &v1.GRPCAction{Port: int32(port), Service: &service}, ip, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := check(""); !out.OK {
		t.Errorf("SERVING: %+v", out)
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	if out := check("db"); out.OK || !strings.Contains(out.Output, "NOT_SERVING") {
		t.Errorf("NOT_SERVING: %+v", out)
	}
	if out := check("unknown"); out.OK {
		t.Errorf("unknown service passed: %+v", out)
	}
}

// fakeExec answers ExecSync with an exit code, or the timeout error.
type fakeExec struct {
	exit    chan int32 // one per call
	timeout bool
	calls   chan *runtimeapi.ExecSyncRequest
}

func (f *fakeExec) ExecSync(ctx context.Context, in *runtimeapi.ExecSyncRequest, _ ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error) {
	if f.calls != nil {
		f.calls <- in
	}
	if f.timeout {
		return nil, status.Error(codes.DeadlineExceeded, "timed out")
	}
	select {
	case code := <-f.exit:
		return &runtimeapi.ExecSyncResponse{ExitCode: code, Stdout: []byte("said " + strconv.Itoa(int(code)))}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestExec(t *testing.T) {
	f := &fakeExec{exit: make(chan int32, 2), calls: make(chan *runtimeapi.ExecSyncRequest, 2)}
	f.exit <- 0
	out, err := Exec(context.Background(), f, "c1", []string{"true"}, 3*time.Second)
	if err != nil || !out.OK {
		t.Errorf("exit 0: %+v %v", out, err)
	}
	if req := <-f.calls; req.GetTimeout() != 3 || req.GetContainerId() != "c1" {
		t.Errorf("request %v", req)
	}
	f.exit <- 1
	if out, _ := Exec(context.Background(), f, "c1", []string{"false"}, time.Second); out.OK || out.Output != "said 1" {
		t.Errorf("exit 1: %+v", out)
	}
	<-f.calls
	f.timeout = true
	if out, err := Exec(context.Background(), f, "c1", []string{"sleep", "9"}, time.Second); err != nil || out.OK || !strings.Contains(out.Output, "timed out") {
		t.Errorf("timeout: %+v %v", out, err)
	}
}
