package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/harness"
)

func requesting(cpu, memory, extra string) string {
	return "    resources: {requests: {cpu: " + cpu + ", memory: " + memory + "}}\n" + extra
}

// Static pods are admitted against the node's allocatable as kubelet
// admits them: one that does not fit next to those running is Failed
// with kubelet's reason and never starts, a critical one is admitted
// regardless, and a restarted berthd keeps the pods it ran.
func TestStaticPodAdmission(t *testing.T) {
	e := newEnvWith(t, func(d *harness.Daemon) { d.AddArgs("--max-pods", "3") })
	e.writeManifest("small.yaml", sleeperManifest("small", requesting("100m", "16Mi", "")))
	e.waitPod("small", "running", running)

	e.writeManifest("huge.yaml", sleeperManifest("huge", requesting("1000", "16Mi", "")))
	e.writeManifest("greedy.yaml", sleeperManifest("greedy", requesting("100m", "1Pi", "")))
	for name, want := range map[string]string{
		"huge":   "OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000, used: 100, capacity: ",
		"greedy": "OutOfmemory: Pod was rejected: Node didn't have enough resource: memory, requested: 1125899906842624, used: 16777216, capacity: ",
	} {
		p := e.waitPod(name, "rejected", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if got := p.Status.Reason + ": " + p.Status.Message; !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q…", name, got, want)
		}
		if sbs := e.podSandboxes(name); len(sbs) != 0 {
			t.Errorf("%s was refused but has sandboxes %v", name, sbs)
		}
		e.waitEvent(name, p.Status.Reason, "Node didn't have enough resource")
	}

	// Critical pods are admitted whatever they ask.
	e.writeManifest("critical.yaml", sleeperManifest("critical", requesting("1000", "16Mi", "  priorityClassName: system-node-critical\n")))
	e.waitPod("critical", "running", running)
	e.writeManifest("third.yaml", sleeperManifest("third", ""))
	e.waitPod("third", "running", running)
	e.writeManifest("fourth.yaml", sleeperManifest("fourth", ""))
	p := e.waitPod("fourth", "rejected", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if want := "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"; p.Status.Reason != "OutOfpods" || p.Status.Message != want {
		t.Errorf("fourth: %s %q, want OutOfpods %q", p.Status.Reason, p.Status.Message, want)
	}

	// After a restart the pods that ran are admitted first: they keep
	// running, the refused ones stay refused.
	ids := map[string]string{}
	for _, name := range []string{"small", "critical", "third"} {
		p, _ := e.agentPod(name)
		ids[name] = p.Status.ContainerStatuses[0].ContainerID
	}
	e.restart()
	for name, id := range ids {
		p := e.waitPod(name, "running after the restart", running)
		if got := p.Status.ContainerStatuses[0].ContainerID; got != id {
			t.Errorf("%s: container %s after the restart, was %s", name, got, id)
		}
	}
	// The pods that ran fill maxPods again: the others stay refused.
	for _, name := range []string{"huge", "greedy", "fourth"} {
		p := e.waitPod(name, "refused after the restart", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if p.Status.Reason != "OutOfpods" {
			t.Errorf("%s after the restart: %s, want OutOfpods", name, p.Status.Reason)
		}
	}

	// Room made and the manifest changed (a new version): it runs.
	for _, name := range []string{"third.yaml", "critical.yaml"} {
		if err := os.Remove(filepath.Join(e.d.Manifests, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.writeManifest("huge.yaml", sleeperManifest("huge", requesting("100m", "16Mi", "")))
	e.waitPod("huge", "running once it fits", running)
}
