package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/kube"
	"github.com/berth-project/berth/test/testutil"
)

// TestKubeletAPI: berth's kubelet API serves what kubectl reaches through
// the API server — logs (tail, follow, the previous attempt), exec with
// stdin and a terminal, port-forward, the stats summary and the cAdvisor
// metrics — and refuses callers without credentials (401) or without
// rights on the node (403).
func TestKubeletAPI(t *testing.T) {
	cluster := kube.Start(t)
	client := cluster.Client(t)
	readOnly := freePort(t)
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--kubeconfig", cluster.NodeKubeconfig(t, d.NodeName), "--read-only-port", strconv.Itoa(int(readOnly)))
	})
	node, ns := e.d.NodeName, "default"
	t.Cleanup(func() { deleteAllPods(t, client, ns) })

	var n *corev1.Node
	testutil.Eventually(t, "node "+node+" Ready", func() bool {
		var err error
		n, err = client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 || port == 10250 {
		t.Fatalf("kubelet endpoint port %d, want the free port berthd bound", port)
	}

	// talker logs five lines, then one more each time /tmp/more appears;
	// crasher fails its first attempt; web serves on 8080.
	pods := []*corev1.Pod{
		apiPod("talker", node, func(p *corev1.Pod) {
			p.Spec.Containers[0].Command = []string{"sh", "-c",
				"for i in 1 2 3 4 5; do echo line-$i; done; " +
					"while true; do if [ -f /tmp/more ]; then rm /tmp/more; echo after-follow; fi; sleep 0.1; done"}
		}),
		apiPod("crasher", node, func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			c := &p.Spec.Containers[0]
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			c.Command = []string{"sh", "-c", `n=$(($(cat /data/n 2>/dev/null || echo 0) + 1)); echo $n > /data/n; echo attempt-$n; ` +
				`[ $n -ge 2 ] && exec sleep 3600; exit 3`}
		}),
		apiPod("web", node, func(p *corev1.Pod) {
			p.Spec.Containers[0].Command = serveCmd("8080", "through-port-forward")
		}),
	}
	for _, p := range pods {
		if _, err := client.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"talker", "web"} {
		waitAPIPod(t, client, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}

	// Logs: all, the tail, and a line written while following.
	testutil.Eventually(t, "talker's five lines", func() bool {
		out, err := cluster.Kubectl(t, "logs", "talker")
		return err == nil && out == "line-1\nline-2\nline-3\nline-4\nline-5\n"
	})
	if out, err := cluster.Kubectl(t, "logs", "talker", "--tail", "2"); err != nil || out != "line-4\nline-5\n" {
		t.Errorf("kubectl logs --tail 2: %q, %v", out, err)
	}
	if out, err := cluster.Kubectl(t, "logs", "talker", "--timestamps", "--limit-bytes", "40"); err != nil || len(out) != 40 ||
		!strings.HasPrefix(out, time.Now().UTC().Format("2006-")) {
		t.Errorf("kubectl logs --timestamps --limit-bytes 40: %q, %v", out, err)
	}
	followCtx, stopFollowing := context.WithCancel(context.Background())
	defer stopFollowing()
	follow := cluster.KubectlCommand(followCtx, "logs", "--follow", "talker")
	var followed testutil.Buffer
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Wait()
	testutil.Eventually(t, "the followed log's first lines", func() bool { return strings.Contains(followed.String(), "line-5\n") })
	if out, err := cluster.Kubectl(t, "exec", "talker", "--", "touch", "/tmp/more"); err != nil {
		t.Fatalf("kubectl exec touch: %q, %v", out, err)
	}
	testutil.Eventually(t, "a line written while following", func() bool { return strings.Contains(followed.String(), "after-follow\n") })
	stopFollowing()

	// The previous attempt of a restarted container.
	waitAPIPod(t, client, ns, "crasher", "restarted and running", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Running != nil
	})
	if out, err := cluster.Kubectl(t, "logs", "crasher", "--previous"); err != nil || out != "attempt-1\n" {
		t.Errorf("kubectl logs --previous: %q, %v", out, err)
	}
	if out, err := cluster.Kubectl(t, "logs", "crasher"); err != nil || out != "attempt-2\n" {
		t.Errorf("kubectl logs of the restarted container: %q, %v", out, err)
	}
	if _, err := cluster.Kubectl(t, "logs", "web", "--previous"); err == nil || !strings.Contains(err.Error(), `previous terminated container "main" in pod "web" not found`) {
		t.Errorf("kubectl logs --previous of a container that never restarted: %v", err)
	}

	// Exec: the exit code comes back; stdin goes in; a terminal is one.
	out, err := cluster.Kubectl(t, "exec", "talker", "--", "sh", "-c", "echo out; exit 3")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || out != "out\n" {
		t.Errorf("kubectl exec exit 3: %q, %v", out, err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cat := cluster.KubectlCommand(ctx(t), "exec", "--stdin", "talker", "--", "cat")
	cat.Stdin = strings.NewReader("round trip\n")
	if out, err := cat.Output(); err != nil || string(out) != "round trip\n" {
		t.Errorf("kubectl exec --stdin cat: %q, %v", out, err)
	}
	// kubectl wants a terminal of its own for --tty: client-go's executor,
	// which kubectl uses, stands in for it.
	// Its stdin stays open until the command ends: a terminal's stdin
	// closing hangs the session up (SIGHUP), which would race the echo.
	var stdout strings.Builder
	stdinR, stdinW := io.Pipe()
	err = execInPod(t, client, admin, ns, "talker", []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty; exit 4"}, true,
		remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout, Tty: true})
	stdinW.Close()
	var codeErr utilexec.CodeExitError
	if !errors.As(err, &codeErr) || codeErr.Code != 4 || stdout.String() != "tty\r\n" {
		t.Errorf("exec -it: %q, %v (want tty, exit code 4)", stdout.String(), err)
	}

	// kubectl port-forward to the web container.
	forwardCtx, stopForwarding := context.WithCancel(context.Background())
	defer stopForwarding()
	forward := cluster.KubectlCommand(forwardCtx, "port-forward", "--address", "127.0.0.1", "pod/web", ":8080")
	forwardOut, err := forward.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := forward.Start(); err != nil {
		t.Fatal(err)
	}
	defer forward.Wait()
	local := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(forwardOut)
		for sc.Scan() { // "Forwarding from 127.0.0.1:40123 -> 8080"
			if f := strings.Fields(sc.Text()); len(f) == 5 && f[0] == "Forwarding" {
				local <- f[2]
				break
			}
		}
		io.Copy(io.Discard, forwardOut)
	}()
	var addr string
	select {
	case addr = <-local:
	case <-time.After(time.Minute):
		t.Fatal("kubectl port-forward did not say where it listens within a minute")
	}
	testutil.Eventually(t, "web through kubectl port-forward", func() bool {
		body, err := httpGet("http://" + addr + "/")
		return err == nil && body == "through-port-forward\n"
	})
	stopForwarding()

	// The summary through the API server's node proxy.
	var summary statsapi.Summary
	var last string // what the summary was when the wait ended, for a failure
	t.Cleanup(func() {
		if t.Failed() && last != "" {
			t.Logf("last stats summary: %.3000s", last)
		}
	})
	testutil.Eventually(t, "talker's container in the stats summary", func() bool {
		raw, err := cluster.Kubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/stats/summary")
		if last = raw; err != nil {
			last = err.Error()
		}
		if err != nil || json.Unmarshal([]byte(raw), &summary) != nil {
			return false
		}
		c := summaryContainer(summary, ns, "talker", "main")
		return c != nil && c.Memory != nil && ptr.Deref(c.Memory.WorkingSetBytes, 0) > 0
	})
	if nd := summary.Node; nd.NodeName != node || ptr.Deref(nd.CPU.UsageCoreNanoSeconds, 0) == 0 || ptr.Deref(nd.Memory.WorkingSetBytes, 0) == 0 ||
		ptr.Deref(nd.Fs.CapacityBytes, 0) == 0 || nd.Runtime == nil || nd.Runtime.ImageFs == nil {
		t.Errorf("node in the summary: %+v", nd)
	}
	// The crasher's emptyDir and logs, and its ephemeral storage.
	var crasher *statsapi.PodStats
	for i := range summary.Pods {
		if p := &summary.Pods[i]; p.PodRef.Namespace == ns && p.PodRef.Name == "crasher" {
			crasher = p
		}
	}
	if crasher == nil || len(crasher.VolumeStats) != 1 || crasher.VolumeStats[0].Name != "data" || ptr.Deref(crasher.VolumeStats[0].UsedBytes, 0) == 0 ||
		crasher.EphemeralStorage == nil || ptr.Deref(crasher.EphemeralStorage.UsedBytes, 0) < ptr.Deref(crasher.VolumeStats[0].UsedBytes, 0) {
		t.Errorf("crasher in the summary: %+v", crasher)
	}
	if c := summaryContainer(summary, ns, "talker", "main"); c.Logs == nil || ptr.Deref(c.Logs.UsedBytes, 0) == 0 {
		t.Errorf("talker's logs in the summary: %+v", c.Logs)
	}
	if raw, err := cluster.Kubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/metrics/cadvisor"); err != nil ||
		!strings.Contains(raw, `container_memory_working_set_bytes{container="main"`) || !strings.Contains(raw, `pod="talker"`) {
		t.Errorf("cAdvisor metrics: %v\n%.2000s", err, raw)
	}
	if raw, err := cluster.Kubectl(t, "get", "--raw", "/api/v1/nodes/"+node+"/proxy/pods"); err != nil || !strings.Contains(raw, `"name":"talker"`) {
		t.Errorf("/pods: %v\n%.1000s", err, raw)
	}

	// kubelet's read-only port: reads without credentials, nothing else.
	roBase := "http://127.0.0.1:" + strconv.Itoa(int(readOnly))
	if body, err := httpGet(roBase + "/pods"); err != nil || !strings.Contains(body, `"name":"talker"`) {
		t.Errorf("read-only port /pods: %v\n%.500s", err, body)
	}
	if body, err := httpGet(roBase + "/stats/summary"); err != nil || !strings.Contains(body, `"nodeName":"`+node+`"`) {
		t.Errorf("read-only port /stats/summary: %v\n%.500s", err, body)
	}
	if resp, err := http.Get(roBase + "/containerLogs/default/talker/main"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("read-only port /containerLogs: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	// Straight to berth's port: no credentials, a user without rights on
	// the node, a service account's token, and the API server's own
	// client certificate.
	base := "https://127.0.0.1:" + strconv.Itoa(int(port))
	code, body, resp := kubeletRequest(t, http.MethodGet, base+"/pods", nil, "")
	if code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d %q, want 401", code, body)
	}
	if leaf := resp.TLS.PeerCertificates[0]; !slices.Contains(leaf.DNSNames, node) {
		t.Errorf("serving certificate names %v, want %s among them", leaf.DNSNames, node)
	}
	certPEM, keyPEM := cluster.ClientCert(t, "alice", "developers")
	alice, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := kubeletRequest(t, http.MethodGet, base+"/containerLogs/default/talker/main", &alice, ""); code != http.StatusForbidden ||
		!strings.Contains(body, "user=alice, verb=get, resource=nodes, subresource(s)=[proxy]") {
		t.Errorf("alice: %d %q, want 403 naming her", code, body)
	}
	token, err := client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := kubeletRequest(t, http.MethodGet, base+"/stats/summary", nil, token.Status.Token); code != http.StatusForbidden ||
		!strings.Contains(body, "user=system:serviceaccount:default:default") {
		t.Errorf("service account token: %d %q, want 403 naming the account", code, body)
	}
	apiserver, err := tls.LoadX509KeyPair(cluster.KubeletClientCertFile, cluster.KubeletClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, _ := kubeletRequest(t, http.MethodPost, base+"/run/default/talker/main?cmd="+url.QueryEscape("echo ran"), &apiserver, ""); code != http.StatusOK || body != "ran\n" {
		t.Errorf("/run: %d %q", code, body)
	}
	if code, body, _ := kubeletRequest(t, http.MethodGet, base+"/containerLogs/default/nosuch/main", &apiserver, ""); code != http.StatusNotFound ||
		!strings.Contains(body, "pod default/nosuch not found") {
		t.Errorf("logs of a missing pod: %d %q", code, body)
	}
	if code, body, _ := kubeletRequest(t, http.MethodGet, base+"/containerLogs/default/talker/main?tailLines=x", &apiserver, ""); code != http.StatusBadRequest {
		t.Errorf("logs with a bad tailLines: %d %q", code, body)
	}
}

// execInPod runs cmd in pod's first container through the API server, as
// kubectl exec does (websocket to the API server, which speaks SPDY to the
// node).
func execInPod(t *testing.T, client kubernetes.Interface, cfg *restclient.Config, ns, pod string, cmd []string, tty bool, opts remotecommand.StreamOptions) error {
	t.Helper()
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: cmd, Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil,
			Stderr: opts.Stderr != nil && !tty, TTY: tty}, scheme.ParameterCodec)
	executor, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return executor.StreamWithContext(ctx, opts)
}

// kubeletRequest sends one request straight to berth's kubelet API, with
// a client certificate and a bearer token if given.
func kubeletRequest(t *testing.T, method, rawURL string, cert *tls.Certificate, token string) (int, string, *http.Response) {
	t.Helper()
	tlsCfg := &tls.Config{InsecureSkipVerify: true} // the serving certificate is self-signed, as kubelet's
	if cert != nil {
		tlsCfg.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

func summaryContainer(s statsapi.Summary, ns, pod, container string) *statsapi.ContainerStats {
	for _, p := range s.Pods {
		if p.PodRef.Namespace != ns || p.PodRef.Name != pod {
			continue
		}
		for i := range p.Containers {
			if p.Containers[i].Name == container {
				return &p.Containers[i]
			}
		}
	}
	return nil
}

// A node without a control plane serves kubelet's read-only port when
// asked: the stats summary and the cAdvisor metrics of its static pods.
func TestKubeletReadOnlyPortStandalone(t *testing.T) {
	readOnly := freePort(t)
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--read-only-port", strconv.Itoa(int(readOnly)))
	})
	e.writeManifest("ro.yaml", sleeperManifest("ro", ""))
	e.waitPod("ro", "running", running)
	base := "http://127.0.0.1:" + strconv.Itoa(int(readOnly))
	name := "ro-" + e.d.NodeName
	var summary statsapi.Summary
	testutil.Eventually(t, "ro's container in the read-only port's stats summary", func() bool {
		body, err := httpGet(base + "/stats/summary")
		if err != nil || json.Unmarshal([]byte(body), &summary) != nil {
			return false
		}
		c := summaryContainer(summary, "default", name, "main")
		return c != nil && c.Memory != nil && ptr.Deref(c.Memory.WorkingSetBytes, 0) > 0
	})
	if summary.Node.NodeName != e.d.NodeName || ptr.Deref(summary.Node.Memory.AvailableBytes, 0) == 0 {
		t.Errorf("node in the summary: %+v", summary.Node)
	}
	body, err := httpGet(base + "/metrics/cadvisor")
	if err != nil || !strings.Contains(body, `container_memory_working_set_bytes{container="main"`) ||
		!strings.Contains(body, `pod="`+name+`"`) {
		t.Errorf("read-only port /metrics/cadvisor: %v\n%s", err, grepLines(body, "working_set"))
	}
}
