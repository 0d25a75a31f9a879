package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/harness"

	"github.com/berth-project/berth/test/testutil"
)

// TestStaticPodOnContainerd runs the agent's core scenario against
// containerd (Debian's package) instead of berth's own runtime: the CRI
// boundary is the only thing between them.
func TestStaticPodOnContainerd(t *testing.T) {
	c, err := harness.StartContainerd(context.Background())
	t.Cleanup(func() {
		if c == nil {
			return
		}
		if t.Failed() {
			if log, err := os.ReadFile(c.LogPath()); err == nil {
				t.Logf("containerd log:\n%s", testutil.Tail(string(log), 40))
			}
		}
		if err := c.Cleanup(); err != nil {
			t.Errorf("containerd cleanup: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Import(ctx(t), imageArchive); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(d *harness.Daemon) { d.SetRuntimeEndpoint("unix://" + c.Socket) })
	d := e.d
	e.rt = c.Runtime // containerd's: what the agent drives

	e.writeManifest("job.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: job}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo started; sleep 1; exit 7"]
`, busybox))
	p := e.waitPod("job", "restarted after exiting", func(p corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].LastTerminationState.Terminated != nil
	})
	cs := p.Status.ContainerStatuses[0]
	if cs.LastTerminationState.Terminated.ExitCode != 7 {
		t.Errorf("last state %+v, want exit code 7", cs.LastTerminationState.Terminated)
	}
	if !strings.HasPrefix(cs.LastTerminationState.Terminated.ContainerID, "containerd://") || p.Status.PodIP == "" {
		t.Errorf("container ID %q, pod IP %q", cs.LastTerminationState.Terminated.ContainerID, p.Status.PodIP)
	}
	if len(e.podSandboxes("job")) != 1 {
		t.Errorf("containerd has %d sandboxes of the pod, want 1", len(e.podSandboxes("job")))
	}

	if err := os.Remove(filepath.Join(d.Manifests, "job.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the pod to be removed from containerd", func() bool { return len(e.podSandboxes("job")) == 0 })
}
