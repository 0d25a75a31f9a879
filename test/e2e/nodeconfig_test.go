package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// A node configured as kubelet is, with a KubeletConfiguration file: the
// cluster's DNS for ClusterFirst pods, a capped restart back-off, and
// /healthz.
func TestKubeletConfigurationSettings(t *testing.T) {
	healthz := freePort(t)
	e := newEnvWith(t, func(d *harness.Daemon) {
		file := filepath.Join(d.Dir, "kubelet.yaml")
		if err := os.WriteFile(file, []byte(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
serializeImagePulls: true
maxPods: 50
crashLoopBackOff:
  maxContainerRestartPeriod: 2s
`), 0o644); err != nil {
			t.Fatal(err)
		}
		d.AddArgs("--config", file, "--healthz-port", fmt.Sprint(healthz))
	})
	if log, _ := os.ReadFile(e.d.LogPath()); strings.Contains(string(log), "does not support") {
		t.Errorf("berthd reported supported fields as unsupported:\n%s", testutil.Tail(string(log), 20))
	}

	body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/healthz", healthz))
	if err != nil || body != "ok" {
		t.Errorf("/healthz: %q, %v", body, err)
	}

	e.writeManifest("dns.yaml", sleeperManifest("dns", ""))
	e.writeManifest("hostdns.yaml", sleeperManifest("hostdns", "  dnsPolicy: Default\n"))
	e.waitPod("dns", "running", running)
	e.waitPod("hostdns", "running", running)
	resolv := e.sh("dns", "main", "cat /etc/resolv.conf")
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("ClusterFirst pod's resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	if host := e.sh("hostdns", "main", "cat /etc/resolv.conf"); strings.Contains(host, "10.96.0.10") {
		t.Errorf("dnsPolicy Default pod got the cluster's DNS:\n%s", host)
	}

	// A crashing container waits at most the configured 2 s between
	// restarts, where kubelet's default series is 10 s, 20 s, 40 s…
	e.writeManifest("crash.yaml", `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: `+busybox+`
    command: ["sh", "-c", "exit 1"]
`)
	p := e.waitPod("crash", "in back-off after three restarts", func(p corev1.Pod) bool {
		c := p.Status.ContainerStatuses
		return len(c) == 1 && c[0].RestartCount >= 3 && c[0].State.Waiting != nil && c[0].State.Waiting.Reason == "CrashLoopBackOff"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.HasPrefix(msg, "back-off 2s ") {
		t.Errorf("back-off message %q, want a 2s back-off", msg)
	}
	testutil.Eventually(t, "a fourth restart", func() bool {
		p, _ := e.agentPod("crash")
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 4
	})
}
