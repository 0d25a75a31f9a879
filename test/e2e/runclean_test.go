package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
)

// TestRunClean: example/clean.sh (make run-clean) takes a node back to
// before berth ran: its pods stop and go, their logs, cgroups and
// volumes with them, and berth's state, default network, bridge and
// leases are removed. Run here against a daemon of the test's own.
func TestRunClean(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("web.yaml", sleeperManifest("web", `    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    emptyDir: {}
`))
	p := e.waitPod("web", "running", running)
	logDir := filepath.Join(e.d.LogDir, "default_"+p.Name+"_"+string(p.UID))
	if _, err := os.Stat(logDir); err != nil {
		t.Fatalf("the pod's log directory: %v", err)
	}
	pid := e.pid(strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://"))
	e.d.Stop()

	cmd := exec.Command("sh", "../../example/clean.sh")
	cmd.Env = append(os.Environ(), "BERTH_BIN="+e.d.Bin, "BERTH_ROOT="+e.d.Root, "BERTH_STATE="+e.d.State,
		"BERTH_LOGS="+e.d.LogDir, "BERTH_CNI_CONF="+filepath.Join(e.d.Dir, "net.d"), "BERTH_CGROUP_ROOT="+e.d.CgroupRoot)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("clean.sh: %v\n%s", err, out)
	}
	for _, gone := range []string{e.d.Root, e.d.State, logDir, filepath.Join(e.d.Dir, "net.d", "10-berth.conflist"), e.d.IPAMDir()} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	if err := exec.Command("ip", "link", "show", e.d.Bridge).Run(); err == nil {
		t.Errorf("the bridge %s is still there", e.d.Bridge)
	}
	if cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + e.d.CgroupRoot); len(cgs) > 0 {
		t.Errorf("cgroups left: %v", cgs)
	}
	if processAlive(pid) {
		t.Errorf("the pod's container (pid %d) still runs", pid)
	}
	if !strings.Contains(string(out), "stopped and removed the pods") {
		t.Errorf("clean.sh said:\n%s", out)
	}
	if left := harness.MountsBelow(e.d.Dir); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
}
