package e2e

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/testutil"
)

func gatedManifest(version, command, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: gated
  annotations: {berth.io/health-gated: "true", berth.io/ready-deadline: 20s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", %q]
    env: [{name: VERSION, value: %q}]
%s`, busybox, command, version, extra)
}

func version(p corev1.Pod) string {
	for _, e := range p.Spec.Containers[0].Env {
		if e.Name == "VERSION" {
			return e.Value
		}
	}
	return ""
}

func rolledBack(p corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == "berth.io/RolledBack" && c.Status == corev1.ConditionTrue {
			return c.Message
		}
	}
	return ""
}

// TestHealthGatedUpdate: a new version that crash-loops or never gets
// Ready is undone, and stays undone across an agent restart, until the
// manifest changes; a good one goes through.
func TestHealthGatedUpdate(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("gated.yaml", gatedManifest("v1", "sleep 3600", ""))
	v1 := e.waitPod("gated", "v1 running", func(p corev1.Pod) bool { return running(p) && version(p) == "v1" })

	// v2 crash-loops: back to v1.
	e.writeManifest("gated.yaml", gatedManifest("v2", "exit 1", ""))
	back := e.waitPod("gated", "rolled back to v1", func(p corev1.Pod) bool {
		return running(p) && version(p) == "v1" && rolledBack(p) != ""
	})
	if msg := rolledBack(back); !strings.Contains(msg, "crash-loop") || !strings.Contains(msg, string(v1.UID)) {
		t.Errorf("rolled back: %q", msg)
	}
	if back.UID != v1.UID {
		t.Errorf("back to %s, want v1's %s", back.UID, v1.UID)
	}
	e.waitEvent("gated", "RolledBack", "crash-loop")
	testutil.Eventually(t, "the rollback on berthctl manifests", func() bool {
		return strings.Contains(e.berthctl("manifests"), "ROLLED BACK default/gated-"+e.d.NodeName)
	})
	cid := back.Status.ContainerStatuses[0].ContainerID

	// The agent restarts: v1 keeps running, v2 is not tried again.
	e.restart()
	after := e.waitPod("gated", "still v1 after the agent restarted", func(p corev1.Pod) bool {
		return running(p) && rolledBack(p) != ""
	})
	if version(after) != "v1" || after.Status.ContainerStatuses[0].ContainerID != cid {
		t.Errorf("after a restart: version %s container %s, want v1 in %s untouched", version(after), after.Status.ContainerStatuses[0].ContainerID, cid)
	}

	// v3 never gets Ready: back to v1 at the deadline.
	e.writeManifest("gated.yaml", gatedManifest("v3", "sleep 3600", "    readinessProbe: {exec: {command: [\"false\"]}, periodSeconds: 1}\n"))
	e.waitPod("gated", "trying v3", func(p corev1.Pod) bool { return version(p) == "v3" })
	back = e.waitPod("gated", "rolled back from v3", func(p corev1.Pod) bool {
		return running(p) && version(p) == "v1" && strings.Contains(rolledBack(p), "did not become Ready within 20s")
	})

	// v4 is good: it goes through and stays.
	e.writeManifest("gated.yaml", gatedManifest("v4", "sleep 3600", ""))
	e.waitPod("gated", "v4 running", func(p corev1.Pod) bool { return running(p) && version(p) == "v4" && rolledBack(p) == "" })
	e.waitEvent("gated", "Updated", "went through")
	if out := e.berthctl("manifests"); strings.Contains(out, "ROLLED BACK") {
		t.Errorf("berthctl manifests after a good update:\n%s", out)
	}
}
