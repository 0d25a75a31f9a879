package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus names the image and the user as containerd does, and a
// pod's network status is never null.
func TestContainerStatusImageAndUser(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("fields")
	podID := e.runPod(pod)
	cfg := containerConfig("app", []string{"sleep", "3600"})
	cfg.Image.Image = busybox[:strings.LastIndexByte(busybox, ':')] + ":1" // the tag, as a user wrote it
	cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	cfg.Linux.SecurityContext.SupplementalGroups = []int64{4242}
	id := e.start(podID, pod, cfg)
	st := e.status(id)
	if st.GetImage().GetImage() != busybox {
		t.Errorf("status image = %q, want the image's first tag %q", st.GetImage().GetImage(), busybox)
	}
	if !strings.HasPrefix(st.GetImageId(), "sha256:") || st.GetImageRef() == "" {
		t.Errorf("image id %q, ref %q", st.GetImageId(), st.GetImageRef())
	}
	u := st.GetUser().GetLinux()
	if u.GetUid() != 1000 || u.GetGid() != 1000 || !containsInt(u.GetSupplementalGroups(), 4242) || !containsInt(u.GetSupplementalGroups(), 50) {
		t.Errorf("user = %v, want uid 1000 gid 1000 with groups 50 (from /etc/group) and 4242", u)
	}

	host := e.podConfig("fields-host", withHostNetwork())
	hostID := e.runPod(host)
	if n := e.podStatus(hostID).GetNetwork(); n == nil || n.GetIp() != "" {
		t.Errorf("host-network pod network status = %v, want empty, not null", n)
	}
}

func containsInt(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Two daemons on one root would corrupt each other: the second refuses.
func TestSecondDaemonOnSameRootRefuses(t *testing.T) {
	e := newEnv(t)
	out, err := exec.CommandContext(context.Background(), filepath.Join(e.d.Bin, "berthd"),
		"--cri-socket", filepath.Join(e.d.Dir, "second.sock"), "--root", e.d.Root, "--state", e.d.State+"2").CombinedOutput()
	if err == nil {
		t.Fatalf("a second berthd on the same root started:\n%s", out)
	}
	if !strings.Contains(string(out), e.d.Root) || !strings.Contains(string(out), "another berthd") {
		t.Errorf("second berthd said %q; want it to name the root and the reason", out)
	}
	// The first one is undisturbed.
	if _, err := e.rt.Version(ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("first berthd: %v", err)
	}
}
