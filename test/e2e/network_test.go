package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	cniplugins "github.com/berth-project/berth/cni-plugins"
	"github.com/berth-project/berth/test/harness"

	"github.com/berth-project/berth/test/testutil"
)

// serveCmd serves a file holding body with busybox httpd on port, in the
// foreground.
func serveCmd(port, body string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p " + port + " -h /www"}
}

// fetch waits until wget of url from container id prints want.
func (e *env) fetch(id, url, want string) {
	e.t.Helper()
	var last string
	testutil.Eventually(e.t, "GET "+url+" to answer "+want, func() bool {
		// No -T: Debian's busybox 1.35 wget segfaults with it; ExecSync's
		// timeout bounds the call.
		out, stderr, code := e.exec(id, "wget", "-q", "-O", "-", url)
		ok := code == 0 && out == want+"\n"
		if got := fmt.Sprintf("exit %d, stdout %q, stderr %q", code, out, stderr); !ok && got != last {
			e.t.Logf("GET %s: %s", url, got) // each new failure once, for a timeout's post-mortem
			last = got
		}
		return ok
	})
}

// podIP returns the pod's IP and checks it lies in the run's subnet.
func (e *env) podIP(podID string) string {
	e.t.Helper()
	ip := e.podStatus(podID).GetNetwork().GetIp()
	_, subnet, err := net.ParseCIDR(e.d.Subnet)
	if err != nil {
		e.t.Fatal(err)
	}
	if parsed := net.ParseIP(ip); parsed == nil || !subnet.Contains(parsed) {
		e.t.Fatalf("pod %s has IP %q, want one in %s", podID, ip, e.d.Subnet)
	}
	return ip
}

// Two pods on the pod network reach each other by pod IP, and each pod's
// eth0 carries the IP PodSandboxStatus reports.
func TestNetworkPodToPod(t *testing.T) {
	e := newEnv(t)
	a := e.podConfig("net-a")
	aID := e.runPod(a)
	e.start(aID, a, containerConfig("web", serveCmd("8080", "hello-from-a")))
	b := e.podConfig("net-b")
	bID := e.runPod(b)
	client := e.start(bID, b, containerConfig("client", []string{"sleep", "3600"}))

	aIP, bIP := e.podIP(aID), e.podIP(bID)
	if aIP == bIP {
		t.Fatalf("both pods have IP %s", aIP)
	}
	out, _, _ := e.exec(client, "ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(out, " "+bIP+"/") {
		t.Errorf("pod B's eth0 does not carry %s:\n%s", bIP, out)
	}
	e.fetch(client, "http://"+aIP+":8080/", "hello-from-a")
}

// Containers of one pod share its network namespace: one reaches the
// other on 127.0.0.1.
func TestNetworkLocalhostWithinPod(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("net-local")
	podID := e.runPod(pod)
	e.start(podID, pod, containerConfig("web", serveCmd("8081", "hello-localhost")))
	client := e.start(podID, pod, containerConfig("client", []string{"sleep", "3600"}))
	e.fetch(client, "http://127.0.0.1:8081/", "hello-localhost")

	// And with nc, the other way round: the client container listens.
	listener := e.start(podID, pod, containerConfig("listener", []string{"sh", "-c", "nc -l -p 9000 > /tmp/got; exec sleep 3600"}))
	testutil.Eventually(t, "nc to 127.0.0.1:9000 to be accepted", func() bool {
		_, _, code := e.exec(client, "sh", "-c", "echo ping-over-lo | nc 127.0.0.1 9000")
		return code == 0
	})
	testutil.Eventually(t, "the listener to receive the message", func() bool {
		out, _, _ := e.exec(listener, "cat", "/tmp/got")
		return out == "ping-over-lo\n"
	})
}

// hostIPv4 is an IPv4 address of the node's default-route interface.
func hostIPv4(t *testing.T) string {
	t.Helper()
	iface, err := net.InterfaceByName(defaultRouteIface())
	if err != nil {
		t.Skipf("no default route interface: %v", err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Skipf("%s has no IPv4 address", iface.Name)
	return ""
}

// freePort is a TCP port nothing on the node listens on right now.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// httpGet fetches url from the node (not from a pod).
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// A port mapping publishes a pod's port on the node's addresses until the
// pod stops.
func TestNetworkHostPort(t *testing.T) {
	e := newEnv(t)
	hostIP := hostIPv4(t)
	port := freePort(t)
	pod := e.podConfig("hostport")
	pod.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8082, HostPort: port}}
	podID := e.runPod(pod)
	e.start(podID, pod, containerConfig("web", serveCmd("8082", "hello-hostport")))

	url := fmt.Sprintf("http://%s:%d/", hostIP, port)
	var last string
	testutil.Eventually(t, "GET "+url+" from the node", func() bool {
		body, err := httpGet(url)
		ok := err == nil && body == "hello-hostport\n"
		if got := fmt.Sprintf("%q, %v", body, err); !ok && got != last {
			t.Logf("GET %s: %s", url, got) // each new failure once
			last = got
		}
		return ok
	})

	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if rules := natRulesOf(podID); len(rules) != 0 {
		t.Errorf("stopped pod keeps NAT rules: %v", rules)
	}
	if body, err := httpGet(url); err == nil {
		t.Errorf("stopped pod's host port still answers: %q", body)
	}
}

// condition returns the runtime condition of type typ.
func condition(st *runtimeapi.RuntimeStatus, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func (e *env) runtimeStatus() *runtimeapi.RuntimeStatus {
	e.t.Helper()
	resp, err := e.rt.Status(ctx(e.t), &runtimeapi.StatusRequest{})
	if err != nil {
		e.t.Fatalf("Status: %v", err)
	}
	return resp.GetStatus()
}

func TestStatusReady(t *testing.T) {
	e := newEnv(t)
	st := e.runtimeStatus()
	for _, typ := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		if c := condition(st, typ); c == nil || !c.GetStatus() {
			t.Errorf("%s = %v, want true", typ, c)
		}
	}
}

// Without a network config the node is NetworkReady=false, pods that need
// the pod network fail with FailedPrecondition (leaving nothing behind),
// host-network pods still run, and a pod CIDR makes the network ready.
func TestStatusNetworkNotReadyWithoutConfig(t *testing.T) {
	e := newEnv(t)
	confDir := filepath.Join(e.d.Dir, "net.d")
	conflist := filepath.Join(confDir, cniplugins.ConflistName)
	saved, err := os.ReadFile(conflist)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(conflist); err != nil {
		t.Fatal(err)
	}

	nr := condition(e.runtimeStatus(), runtimeapi.NetworkReady)
	if nr == nil || nr.GetStatus() || nr.GetReason() != "NetworkPluginNotReady" || !strings.Contains(nr.GetMessage(), confDir) {
		t.Errorf("NetworkReady = %v; want false, NetworkPluginNotReady, naming %s", nr, confDir)
	}
	if rr := condition(e.runtimeStatus(), runtimeapi.RuntimeReady); rr == nil || !rr.GetStatus() {
		t.Errorf("RuntimeReady = %v, want true without a pod network", rr)
	}

	pod := e.podConfig("needs-net")
	_, err = e.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(msg, "network") || !strings.Contains(msg, confDir) {
		t.Fatalf("RunPodSandbox without a pod network: %v; want FailedPrecondition naming the network and %s", err, confDir)
	}
	pods, err := e.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(pods.GetItems()) != 0 {
		t.Errorf("after a failed RunPodSandbox, ListPodSandbox = %v, %v; want none", pods.GetItems(), err)
	}
	for _, dir := range []string{filepath.Join(e.d.State, "netns"), filepath.Join(e.d.Root, "sandboxes"), filepath.Join(e.d.State, "sandboxes")} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a failed RunPodSandbox left %d entries in %s", len(entries), dir)
		}
	}
	if m := harness.MountsBelow(e.d.Dir); len(m) != 0 {
		t.Errorf("a failed RunPodSandbox left mounts: %v", m)
	}

	host := e.podConfig("hostnet-nonet", withHostNetwork())
	hostID := e.runPod(host)
	id := e.start(hostID, host, containerConfig("app", []string{"sleep", "3600"}))
	if out, _, code := e.exec(id, "echo", "up"); out != "up\n" || code != 0 {
		t.Errorf("host-network pod without a pod network: exec = %q, %d", out, code)
	}

	_, err = e.rt.UpdateRuntimeConfig(ctx(t), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.1.2.0/33"}},
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "10.1.2.0/33") {
		t.Errorf("UpdateRuntimeConfig with a bad pod CIDR: %v; want InvalidArgument naming it", err)
	}
	if nr := condition(e.runtimeStatus(), runtimeapi.NetworkReady); nr == nil || nr.GetStatus() {
		t.Errorf("NetworkReady after a bad pod CIDR = %v, want still false", nr)
	}

	// berth writes its default network for the pod CIDR. No pod runs on
	// it: it would use the node-wide bridge berth0 and lease directory.
	if _, err := e.rt.UpdateRuntimeConfig(ctx(t), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: e.d.Subnet}},
	}); err != nil {
		t.Fatalf("UpdateRuntimeConfig: %v", err)
	}
	if nr := condition(e.runtimeStatus(), runtimeapi.NetworkReady); nr == nil || !nr.GetStatus() {
		t.Errorf("NetworkReady after UpdateRuntimeConfig = %v, want true", nr)
	}
	written, err := os.ReadFile(conflist)
	if err != nil || !strings.Contains(string(written), e.d.Subnet) {
		t.Errorf("default network config for %s: %q, %v", e.d.Subnet, written, err)
	}

	// With the run's own network back, the pod that failed runs, under
	// the same name.
	if err := os.WriteFile(conflist, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	podID := e.runPod(pod)
	e.podIP(podID)
}

// A pod's network is released with the config it was set up with, even
// when the node's network config has gone since.
func TestNetworkTeardownAfterConfigRemoved(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("conf-gone")
	podID := e.runPod(pod)
	ip := e.podIP(podID)
	if err := os.Remove(filepath.Join(e.d.Dir, "net.d", cniplugins.ConflistName)); err != nil {
		t.Fatal(err)
	}
	e.removePod(podID)
	if leases := leasedIPs(e.d.IPAMDir()); len(leases) != 0 {
		t.Errorf("lease of %s kept: %v", ip, leases)
	}
	if rules := natRulesOf(podID); len(rules) != 0 {
		t.Errorf("NAT rules kept: %v", rules)
	}
	if ports := bridgePorts(e.d.Bridge); len(ports) != 0 {
		t.Errorf("veths kept on %s: %v", e.d.Bridge, ports)
	}
}
