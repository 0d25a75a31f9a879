package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/testutil"
)

// TestSlowPullNeitherHidesNorHoldsThePod: a pod whose image pull hangs is
// listed (Pending, ContainerCreating) while it pulls, and removing its
// manifest removes it without waiting for the pull.
func TestSlowPullNeitherHidesNorHoldsThePod(t *testing.T) {
	// A registry that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	e := newEnv(t)
	e.writeManifest("slow.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s/stuck/image:1
    imagePullPolicy: Always
`, l.Addr()))
	p := e.waitPod("slow", "listed while its image is pulled", func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodPending && len(p.Status.ContainerStatuses) == 1 &&
			p.Status.ContainerStatuses[0].State.Waiting != nil && p.Status.ContainerStatuses[0].State.Waiting.Reason == "ContainerCreating"
	})
	if p.Status.StartTime == nil {
		t.Error("no start time while pulling")
	}
	testutil.Eventually(t, "the pull to reach the registry", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(conns) > 0
	})
	if err := os.Remove(filepath.Join(e.d.Manifests, "slow.yaml")); err != nil {
		t.Fatal(err)
	}
	// The pull's own time-outs are minutes long: the removal must not
	// wait for them.
	testutil.Eventually(t, "pod slow gone", func() bool {
		_, listed := e.agentPod("slow")
		return !listed && len(e.podSandboxes("slow")) == 0
	})
}
