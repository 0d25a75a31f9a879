package vm

import (
	"strings"
	"testing"
)

// TestSystemdUnit: berth installed with its unit under a real systemd on
// cgroup v2. The unit is active only once berthd is ready (its CRI
// answers the moment `systemctl start` returns); it runs a static pod; a
// restart of the service leaves the pod's container untouched (same
// container, same PID); stopping the service stops no container.
func TestSystemdUnit(t *testing.T) {
	skipUnlessVM(t)
	g := newGuest(t, "guest-systemd.sh")
	g.write("pod.yaml", fmtPod("web", "exec sleep 3600"))
	res := g.boot()
	want(t, res, map[string]string{
		"cgroupfs":             "cgroup2fs",
		"verify":               "ok",
		"start":                "0",
		"active":               "active",
		"cri_when_active":      "0",
		"import":               "0",
		"restart":              "0",
		"active_after_restart": "active",
		"stop":                 "0",
		"active_after_stop":    "inactive",
		"alive_after_stop":     "yes",
		"done":                 "yes",
	})
	if res["container"] == "none" || res["container"] == "" || res["pid"] == "none" || res["pid"] == "" {
		t.Fatalf("the static pod's container never ran: container %q, pid %q", res["container"], res["pid"])
	}
	if res["container_after_restart"] != res["container"] || res["pid_after_restart"] != res["pid"] {
		t.Errorf("after systemctl restart berth: container %s pid %s, want the same %s pid %s",
			res["container_after_restart"], res["pid_after_restart"], res["container"], res["pid"])
	}
	if !strings.Contains(res["status_line"], "serving the CRI") {
		t.Errorf("systemctl status shows %q, want berthd's STATUS= line", res["status_line"])
	}
	if !strings.HasPrefix(res["pod_cgroup"], "/kubepods") {
		t.Errorf("the container's cgroup is %q, want it below /kubepods", res["pod_cgroup"])
	}
	t.Logf("systemd %s, the container's cgroup %s", res["systemd"], res["pod_cgroup"])
}
