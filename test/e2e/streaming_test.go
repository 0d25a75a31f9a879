package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

// These tests drive the streaming sessions with the client kubectl uses
// (client-go's SPDY executor and port forwarder) against the URLs the
// Exec, Attach and PortForward RPCs return.

func withStdin(once bool) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Stdin, c.StdinOnce = true, once }
}

func withTty() ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Tty = true }
}

// sizes is a TerminalSizeQueue that yields its sizes, then nothing until
// the session ends.
type sizes struct {
	ch   chan remotecommand.TerminalSize
	done chan struct{}
}

func newSizes(s ...remotecommand.TerminalSize) *sizes {
	q := &sizes{ch: make(chan remotecommand.TerminalSize, len(s)), done: make(chan struct{})}
	for _, v := range s {
		q.ch <- v
	}
	return q
}

func (q *sizes) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.ch:
		return &s
	case <-q.done:
		return nil
	}
}

// stream runs one exec or attach session against url.
func stream(t *testing.T, rawURL string, opts remotecommand.StreamOptions) error {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("session URL %q: %v", rawURL, err)
	}
	exec, err := remotecommand.NewSPDYExecutor(&restclient.Config{}, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return exec.StreamWithContext(c, opts)
}

// exitCode is the exit code a session reported: 0 for success, -1 for an
// error that is not an exit code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var exitErr utilexec.CodeExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	return -1
}

func (e *env) execURL(req *runtimeapi.ExecRequest) string {
	e.t.Helper()
	resp, err := e.rt.Exec(ctx(e.t), req)
	if err != nil {
		e.t.Fatalf("Exec %v: %v", req.GetCmd(), err)
	}
	if !strings.HasPrefix(resp.GetUrl(), "http://127.0.0.1:") {
		e.t.Fatalf("Exec URL %q is not on the loopback streaming server", resp.GetUrl())
	}
	return resp.GetUrl()
}

func (e *env) attachURL(req *runtimeapi.AttachRequest) string {
	e.t.Helper()
	resp, err := e.rt.Attach(ctx(e.t), req)
	if err != nil {
		e.t.Fatalf("Attach %s: %v", req.GetContainerId(), err)
	}
	return resp.GetUrl()
}

func TestStreamExecWithoutTty(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("exec")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	url := e.execURL(&runtimeapi.ExecRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true,
		Cmd: []string{"sh", "-c", `read x; echo "out:$x"; echo "err:$x" >&2; cat; exit 7`}})
	var stdout, stderr testutil.Buffer
	err := stream(t, url, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\nrest of stdin\n"), Stdout: &stdout, Stderr: &stderr})
	if exitCode(err) != 7 {
		t.Errorf("exit = %v, want code 7", err)
	}
	if stdout.String() != "out:hello\nrest of stdin\n" || stderr.String() != "err:hello\n" {
		t.Errorf("stdout %q, stderr %q; want the streams apart, stdin piped through", stdout.String(), stderr.String())
	}

	// Success is no error; an exec URL is good for one session only.
	url = e.execURL(&runtimeapi.ExecRequest{ContainerId: id, Stdout: true, Cmd: []string{"hostname"}})
	stdout = testutil.Buffer{}
	if err := stream(t, url, remotecommand.StreamOptions{Stdout: &stdout}); err != nil || stdout.String() != "exec\n" {
		t.Errorf("hostname: %v, output %q", err, stdout.String())
	}
	if err := stream(t, url, remotecommand.StreamOptions{Stdout: io.Discard}); err == nil {
		t.Error("a used exec URL served a second session")
	}
}

func TestStreamExecWithTty(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("exectty")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	url := e.execURL(&runtimeapi.ExecRequest{ContainerId: id, Tty: true, Stdout: true,
		Cmd: []string{"sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo "on a tty"; exit 5`}})
	var out testutil.Buffer
	err := stream(t, url, remotecommand.StreamOptions{Stdout: &out, Tty: true})
	if exitCode(err) != 5 {
		t.Errorf("exit = %v, want code 5", err)
	}
	if out.String() != "on a tty\r\n" {
		t.Errorf("output %q, want %q (a terminal ends lines with CR LF)", out.String(), "on a tty\r\n")
	}

	// Input goes through the terminal and a resize reaches it.
	url = e.execURL(&runtimeapi.ExecRequest{ContainerId: id, Tty: true, Stdin: true, Stdout: true,
		Cmd: []string{"sh", "-c", `read line; for i in $(seq 100); do s=$(busybox stty size); [ "$s" = "33 77" ] && break; sleep 0.1; done; echo "size:$s line:$line"`}})
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	q := newSizes(remotecommand.TerminalSize{Width: 77, Height: 33})
	defer close(q.done)
	out = testutil.Buffer{}
	go stdinW.Write([]byte("typed\r"))
	err = stream(t, url, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Tty: true, TerminalSizeQueue: q})
	if err != nil {
		t.Errorf("exit = %v, want success", err)
	}
	if !strings.Contains(out.String(), "size:33 77 line:typed\r\n") {
		t.Errorf("output %q, want the resized terminal's size and the typed line", out.String())
	}
}

func TestStreamAttachStdin(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("attach")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("cat", []string{"cat"}, withStdin(false)))

	// Two sessions in turn: stdin stays open between them (not stdin_once).
	for i, line := range []string{"hello attach", "second session"} {
		url := e.attachURL(&runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
		stdinR, stdinW := io.Pipe()
		var out testutil.Buffer
		done := make(chan error, 1)
		go func() {
			done <- stream(t, url, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Stderr: io.Discard})
		}()
		if _, err := stdinW.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "cat to echo the line to the attached client", func() bool { return out.String() == line+"\n" })
		// The end of the client's stdin ends its session.
		stdinW.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("session %d: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("session %d did not end with its stdin", i)
		}
		if st := e.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after session %d the container is %v", i, st.GetState())
		}
	}
	logPath := filepath.Join(pod.GetLogDirectory(), "cat", "0.log")
	testutil.Eventually(t, "both lines in the log too", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), " stdout F hello attach\n") && strings.Contains(string(data), " stdout F second session\n")
	})
}

func TestStreamAttachStdinOnce(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("once")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("once", []string{"sh", "-c", "cat; echo stdin closed; echo bye >&2"}, withStdin(true)))

	url := e.attachURL(&runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
	var stdout, stderr testutil.Buffer
	err := stream(t, url, remotecommand.StreamOptions{Stdin: strings.NewReader("only line\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	// The session lasted until the output ended: stdin closed, the
	// container finished.
	if stdout.String() != "only line\nstdin closed\n" || stderr.String() != "bye\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if st := e.waitExited(id); st.GetExitCode() != 0 {
		t.Errorf("exit code %d, want 0", st.GetExitCode())
	}
}

func TestStreamAttachTty(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("attachtty")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("shell", []string{"sh"}, withStdin(false), withTty()))

	url := e.attachURL(&runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true})
	stdinR, stdinW := io.Pipe()
	q := newSizes(remotecommand.TerminalSize{Width: 91, Height: 27})
	defer close(q.done)
	var out testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- stream(t, url, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &out, Tty: true, TerminalSizeQueue: q})
	}()
	if _, err := stdinW.Write([]byte("echo $((6*7))\r")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the shell's answer on the terminal", func() bool { return strings.Contains(out.String(), "42\r\n") })
	if _, err := stdinW.Write([]byte("busybox stty size\r")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the resized terminal", func() bool { return strings.Contains(out.String(), "27 91\r\n") })
	stdinW.Close()
	if err := <-done; err != nil {
		t.Errorf("attach: %v", err)
	}
	// What the terminal showed is the container's stdout in its log.
	logPath := filepath.Join(pod.GetLogDirectory(), "shell", "0.log")
	testutil.Eventually(t, "the terminal's output in the log", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), " stdout F 42\r\n")
	})
	if st := e.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after detaching the shell is %v", st.GetState())
	}

	// A tty container that ends: its output is logged, its exit recorded.
	short := e.start(podID, pod, containerConfig("short", []string{"sh", "-c", "echo from a tty; exit 3"}, withTty()))
	if st := e.waitExited(short); st.GetExitCode() != 3 {
		t.Errorf("tty container exit code %d, want 3", st.GetExitCode())
	}
	data, _ := os.ReadFile(filepath.Join(pod.GetLogDirectory(), "short", "0.log"))
	if !strings.Contains(string(data), " stdout F from a tty\r\n") {
		t.Errorf("tty container's log %q", data)
	}
}

// portForwardGet forwards a local port to port in the pod, as `kubectl
// port-forward` does, and GETs / through it.
func (e *env) portForwardGet(podID string, port int) string {
	e.t.Helper()
	resp, err := e.rt.PortForward(ctx(e.t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{int32(port)}})
	if err != nil {
		e.t.Fatalf("PortForward: %v", err)
	}
	u, err := url.Parse(resp.GetUrl())
	if err != nil {
		e.t.Fatal(err)
	}
	transport, upgrader, err := spdy.RoundTripperFor(&restclient.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut testutil.Buffer
	pf, err := portforward.New(dialer, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		e.t.Fatal(err)
	}
	forwarded := make(chan error, 1)
	go func() { forwarded <- pf.ForwardPorts() }()
	defer func() {
		close(stop)
		<-forwarded
	}()
	select {
	case <-ready:
	case err := <-forwarded:
		e.t.Fatalf("port forward: %v", err)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		e.t.Fatalf("forwarded ports %v: %v", ports, err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		e.t.Fatalf("GET through the forwarded port: %v (forwarder: %s)", err, errOut.String())
	}
	defer get.Body.Close()
	body, err := io.ReadAll(get.Body)
	if err != nil || get.StatusCode != http.StatusOK {
		e.t.Fatalf("GET: %s, %q, %v", get.Status, body, err)
	}
	return string(body)
}

// httpdConfig serves a file saying what with busybox httpd on addr.
func httpdConfig(addr, what string) *runtimeapi.ContainerConfig {
	return containerConfig("httpd", []string{"sh", "-c",
		"mkdir -p /www && echo " + what + " > /www/index.html && exec httpd -f -p " + addr + " -h /www"})
}

func TestStreamPortForward(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("pf")
	podID := e.runPod(pod)
	id := e.start(podID, pod, httpdConfig("8080", "from-the-pod"))
	testutil.Eventually(t, "httpd to listen", func() bool {
		out, _, code := e.exec(id, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		return code == 0 && out == "from-the-pod\n"
	})
	if body := e.portForwardGet(podID, 8080); body != "from-the-pod\n" {
		t.Errorf("body %q, want the pod's file", body)
	}
	// A second connection through a new session works as well.
	if body := e.portForwardGet(podID, 8080); body != "from-the-pod\n" {
		t.Errorf("second body %q", body)
	}
}

func TestStreamPortForwardHostNetwork(t *testing.T) {
	e := newEnv(t)
	port := freeHostPort(t)
	pod := e.podConfig("pfhost", withHostNetwork())
	podID := e.runPod(pod)
	e.start(podID, pod, httpdConfig("127.0.0.1:"+strconv.Itoa(port), "from-the-host-network"))
	testutil.Eventually(t, "httpd to listen on the host's loopback", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if body := e.portForwardGet(podID, port); body != "from-the-host-network\n" {
		t.Errorf("body %q, want the host-network pod's file", body)
	}
}

// freeHostPort is a loopback port nothing listens on right now.
func freeHostPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestStreamRequestErrors(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	const unknown = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pod := e.podConfig("errs")
	podID := e.runPod(pod)
	running := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))
	exited := e.start(podID, pod, containerConfig("done", []string{"true"}))
	e.waitExited(exited)

	_, err := e.rt.Exec(c, &runtimeapi.ExecRequest{ContainerId: unknown, Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "Exec in unknown container", err, codes.NotFound, unknown)
	_, err = e.rt.Exec(c, &runtimeapi.ExecRequest{ContainerId: exited, Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "Exec in exited container", err, codes.FailedPrecondition, "not running")
	_, err = e.rt.Exec(c, &runtimeapi.ExecRequest{ContainerId: running, Cmd: []string{"true"}, Tty: true, Stdout: true, Stderr: true})
	wantCode(t, "Exec with tty and stderr", err, codes.InvalidArgument, "tty and stderr")
	_, err = e.rt.Exec(c, &runtimeapi.ExecRequest{ContainerId: running, Cmd: []string{"true"}})
	wantCode(t, "Exec without streams", err, codes.InvalidArgument, "stdin, stdout and stderr")
	_, err = e.rt.Exec(c, &runtimeapi.ExecRequest{ContainerId: running, Stdout: true})
	wantCode(t, "Exec without cmd", err, codes.InvalidArgument, "cmd")
	_, err = e.rt.Attach(c, &runtimeapi.AttachRequest{ContainerId: unknown, Stdout: true})
	wantCode(t, "Attach to unknown container", err, codes.NotFound, unknown)
	_, err = e.rt.Attach(c, &runtimeapi.AttachRequest{ContainerId: exited, Stdout: true})
	wantCode(t, "Attach to exited container", err, codes.FailedPrecondition, "not running")
	_, err = e.rt.Attach(c, &runtimeapi.AttachRequest{ContainerId: running, Tty: true, Stderr: true})
	wantCode(t, "Attach with tty and stderr", err, codes.InvalidArgument, "tty and stderr")
	_, err = e.rt.PortForward(c, &runtimeapi.PortForwardRequest{PodSandboxId: unknown, Port: []int32{80}})
	wantCode(t, "PortForward to unknown pod", err, codes.NotFound, unknown)
	_, err = e.rt.PortForward(c, &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{70000}})
	wantCode(t, "PortForward to port 70000", err, codes.InvalidArgument, "70000")
	_, err = e.rt.ReopenContainerLog(c, &runtimeapi.ReopenContainerLogRequest{ContainerId: unknown})
	wantCode(t, "ReopenContainerLog of unknown container", err, codes.NotFound, unknown)
	_, err = e.rt.ReopenContainerLog(c, &runtimeapi.ReopenContainerLogRequest{ContainerId: exited})
	wantCode(t, "ReopenContainerLog of exited container", err, codes.FailedPrecondition, "not running")

	if _, err := e.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	_, err = e.rt.PortForward(c, &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{80}})
	wantCode(t, "PortForward to stopped pod", err, codes.FailedPrecondition, "not ready")
}

func TestReopenContainerLog(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("rotate")
	podID := e.runPod(pod)
	// A line every few milliseconds, numbered, so a lost, doubled or
	// split line shows.
	id := e.start(podID, pod, containerConfig("counter", []string{"sh", "-c",
		`i=0; while true; do echo "line $i"; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.01; done`}))
	logPath := filepath.Join(pod.GetLogDirectory(), "counter", "0.log")
	testutil.Eventually(t, "the counter to log", func() bool {
		return len(logLines(t, logPath)) > 1000
	})

	// Rotate as kubelet does: rename, then have the runtime reopen.
	rotated := logPath + ".20260101-000000"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ReopenContainerLog(ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	testutil.Eventually(t, "new lines in the new file", func() bool {
		return len(logLines(t, logPath)) > 1000
	})
	if _, err := e.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	old, cur := logLines(t, rotated), logLines(t, logPath)
	if len(old) == 0 || len(cur) == 0 {
		t.Fatalf("old file %d lines, new file %d lines", len(old), len(cur))
	}
	// Everything the old file has comes before everything in the new one,
	// and together they count up without a gap.
	next := 0
	for i, n := range append(old, cur...) {
		if n != next {
			where := "old file"
			if i >= len(old) {
				where = "new file"
			}
			t.Fatalf("%s: line %d is %d, want %d (old file ends at %d)", where, i, n, next, old[len(old)-1])
		}
		next++
	}
}

// logLines reads a CRI log of "line N" records and returns the Ns. A
// record that is not a whole "stdout F line N" record fails the test.
func logLines(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ns []int
	text := string(data)
	// The last record may still be being written.
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		return nil
	}
	for _, rec := range strings.Split(text, "\n") {
		f := strings.SplitN(rec, " ", 4)
		var n int
		if len(f) != 4 || f[1] != "stdout" || f[2] != "F" {
			t.Fatalf("%s: bad record %q", path, rec)
		}
		if _, err := fmt.Sscanf(f[3], "line %d", &n); err != nil {
			t.Fatalf("%s: bad record %q", path, rec)
		}
		ns = append(ns, n)
	}
	return ns
}
