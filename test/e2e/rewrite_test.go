package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/api"
	"github.com/berth-project/berth/test/testutil"
)

// manifestError is what /manifests says of one file.
func (e *env) manifestOf(name string) api.Manifest {
	var ms []api.Manifest
	e.apiGet("/manifests", &ms)
	for _, m := range ms {
		if filepath.Base(m.File) == name {
			return m
		}
	}
	return api.Manifest{}
}

// TestManifestRewrittenInPlace: a file truncated and written again (cat >,
// an editor saving in place), or broken for a while, leaves its pod alone.
func TestManifestRewrittenInPlace(t *testing.T) {
	e := newEnv(t)
	content := sleeperManifest("inplace", "")
	e.writeManifest("inplace.yaml", content)
	p := e.waitPod("inplace", "running", running)
	sandboxes := e.podSandboxes("inplace")
	path := filepath.Join(e.d.Manifests, "inplace.yaml")
	// Empty, half written, then whole again, in place.
	for _, step := range []string{"", content[:len(content)/2], content} {
		if err := os.WriteFile(path, []byte(step), 0o644); err != nil {
			t.Fatal(err)
		}
		if step != content {
			testutil.Eventually(t, "the broken file reported", func() bool {
				m := e.manifestOf("inplace.yaml")
				return strings.Contains(m.Error, "still running its last valid version") && len(m.Pods) == 1
			})
		}
	}
	testutil.Eventually(t, "the whole file valid again", func() bool { return e.manifestOf("inplace.yaml").Error == "" })
	after := e.waitPod("inplace", "running", running)
	now := e.podSandboxes("inplace")
	if len(now) != 1 || len(sandboxes) != 1 || now[0].GetId() != sandboxes[0].GetId() ||
		after.Status.ContainerStatuses[0].ContainerID != p.Status.ContainerStatuses[0].ContainerID {
		t.Errorf("rewriting the same content replaced the pod: sandboxes %v → %v", sandboxes, now)
	}
	if out := e.berthctl("manifests"); !strings.Contains(out, "inplace.yaml: default/inplace-"+e.d.NodeName) {
		t.Errorf("berthctl manifests:\n%s", out)
	}

	// A stray file defining the same pod, sorting first, is refused; the
	// running pod stays.
	e.writeManifest("0-stray.yaml", sleeperManifest("inplace", "    env: [{name: STRAY, value: x}]\n"))
	testutil.Eventually(t, "the stray file refused", func() bool {
		return strings.Contains(e.manifestOf("0-stray.yaml").Error, "already defined in "+path)
	})
	if p2, _ := e.agentPod("inplace"); p2.UID != p.UID {
		t.Errorf("the stray file replaced the running pod: %s → %s", p.UID, p2.UID)
	}

	// startTime (AGE) survives a restart of berthd.
	e.restart()
	restarted := e.waitPod("inplace", "running after the agent restarted", func(q corev1.Pod) bool { return running(q) })
	if !restarted.Status.StartTime.Equal(p.Status.StartTime) {
		t.Errorf("start time %v after a restart, was %v", restarted.Status.StartTime, p.Status.StartTime)
	}
}
