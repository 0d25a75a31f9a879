package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// A node whose filesystem fills up: berth's root is a small filesystem of
// its own, a pod fills its emptyDir, and the eviction manager evicts that
// pod — not the quiet one next to it — which frees the disk.
func TestEvictionOnFullDisk(t *testing.T) {
	e := newEnvWith(t, func(d *harness.Daemon) {
		mountSmallFS(t, d.Root, 96)
		d.AddArgs("--eviction-hard", "nodefs.available<30%", "--eviction-pressure-transition-period", "1m")
	})
	e.writeManifest("quiet.yaml", sleeperManifest("quiet", ""))
	e.waitPod("quiet", "running", running)
	e.writeManifest("filler.yaml", `apiVersion: v1
kind: Pod
metadata: {name: filler}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: `+busybox+`
    command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=60; sync; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    emptyDir: {}
`)
	p := e.waitPod("filler", "evicted", func(p corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if p.Status.Phase != corev1.PodFailed ||
		!strings.HasPrefix(p.Status.Message, "The node was low on resource: ephemeral-storage. Threshold quantity: ") ||
		!strings.Contains(p.Status.Message, "Pod was using ") {
		t.Errorf("evicted pod: phase %s, message %q", p.Status.Phase, p.Status.Message)
	}
	disruption := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "TerminationByKubelet" {
			disruption = true
		}
	}
	if !disruption {
		t.Errorf("no DisruptionTarget condition: %+v", p.Status.Conditions)
	}
	if out := e.berthctl("status"); !strings.Contains(out, "pressure: DiskPressure (nodefs.available ") ||
		!strings.Contains(out, "runtime: berth ") || !strings.Contains(out, "RuntimeReady=true, NetworkReady=true") {
		t.Errorf("berthctl status under pressure:\n%s", out)
	}
	// Its emptyDir goes, which relieves the disk; it is never started again.
	testutil.Eventually(t, "the evicted pod's container stopped and its emptyDir removed", func() bool {
		p, _ := e.agentPod("filler")
		cs := p.Status.ContainerStatuses
		_, err := os.Stat(filepath.Join(e.d.Root, "pods", string(p.UID), "volumes"))
		return len(cs) == 1 && cs[0].State.Terminated != nil && os.IsNotExist(err)
	})
	testutil.Eventually(t, "more than 30 % of the filesystem free again", func() bool {
		var st unix.Statfs_t
		return unix.Statfs(e.d.Root, &st) == nil && st.Bavail*100 > st.Blocks*30
	})
	if q, _ := e.agentPod("quiet"); q.Status.Phase != corev1.PodRunning || q.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the quiet pod was disturbed: %s, %+v", q.Status.Phase, q.Status.ContainerStatuses)
	}
	metrics := e.apiText("/metrics")
	if !strings.Contains(metrics, "\nkubelet_evictions{eviction_signal=\"nodefs.available\"} 1\n") {
		t.Errorf("/metrics has no kubelet_evictions for nodefs.available:\n%s", grepLines(metrics, "evictions"))
	}
	log, _ := os.ReadFile(e.d.LogPath())
	if !strings.Contains(grepLines(string(log), `msg="eviction: pod evicted"`), "pod=default/filler-") {
		t.Errorf("berthd did not log the eviction:\n%s", grepLines(string(log), "eviction"))
	}

	// A restarted berthd keeps the pod evicted: its first status of the
	// pod is what its first plan decided, before acting on it.
	e.d.Stop()
	if err := e.d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	p = e.waitPod("filler", "reported after the restart", func(p corev1.Pod) bool { return len(p.Status.ContainerStatuses) == 1 })
	if c := p.Status.ContainerStatuses[0]; p.Status.Reason != "Evicted" || c.RestartCount != 0 || c.State.Terminated == nil {
		t.Errorf("after a restart of berthd the evicted pod is %s (%q), container %+v", p.Status.Phase, p.Status.Reason, c)
	}
	e.waitPod("quiet", "running after the restart", running)
}

// mountSmallFS mounts a fresh ext4 filesystem of sizeMiB at dir (without
// blocks reserved for root, so that df and statfs agree), unmounted once
// the test and its daemon's cleanup are done.
func mountSmallFS(t *testing.T, dir string, sizeMiB int) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", img, err, out)
	}
	t.Cleanup(func() {
		if !slices.Contains(harness.MountsBelow(filepath.Dir(dir)), dir) {
			return // the daemon's cleanup unmounted it
		}
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
