package vm

import (
	"strconv"
	"strings"
	"testing"
)

// quitterPod exits 7 once /gate/go exists: the guest makes it while
// berthd is dead.
const quitterPod = `apiVersion: v1
kind: Pod
metadata: {name: quitter}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes: [{name: gate, hostPath: {path: /gate}}]
  containers:
  - name: quitter
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sh", "-c", "while [ ! -e /gate/go ]; do sleep 0.1; done; exit 7"]
    volumeMounts: [{name: gate, mountPath: /gate}]
`

// TestSystemdUnit: berth installed with its unit under a real systemd on
// cgroup v2. The unit is active only once berthd is ready (its CRI
// answers the moment `systemctl start` returns); it runs a static pod; a
// restart of the service leaves the pod's container untouched (same
// container, same PID); after kill -9 of berthd systemd restarts it and
// nothing is lost (an exit code of a container that ended meanwhile, a
// log line written meanwhile); stopping the service stops no container.
func TestSystemdUnit(t *testing.T) {
	skipUnlessVM(t)
	g := newGuest(t, "guest-systemd.sh")
	g.write("pod.yaml", fmtPod("web", "exec sleep 3600"))
	g.write("counter.yaml", fmtPod("counter", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done"))
	g.write("quitter.yaml", quitterPod)
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
		"shim_scope":           "active",
		"active_after_kill":    "active",
		"quitter_exit":         "7",
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
	if n, _ := strconv.Atoi(res["restarts"]); n < 1 {
		t.Errorf("systemd restarted berthd %q times after kill -9, want at least once", res["restarts"])
	}
	if lines := strings.Fields(res["counter_lines"]); len(lines) != 2 || lines[0] != "ok" {
		t.Errorf("the counter's log across kill -9 and restart of berthd: %q, want ok and its line count", res["counter_lines"])
	}
	if !strings.Contains(res["status_line"], "serving the CRI") {
		t.Errorf("systemctl status shows %q, want berthd's STATUS= line", res["status_line"])
	}
	if !strings.HasPrefix(res["pod_cgroup"], "/kubepods") {
		t.Errorf("the container's cgroup is %q, want it below /kubepods", res["pod_cgroup"])
	}
	t.Logf("systemd %s, the container's cgroup %s", res["systemd"], res["pod_cgroup"])
}
