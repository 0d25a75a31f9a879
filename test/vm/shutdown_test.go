package vm

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestGracefulNodeShutdown: with shutdownGracePeriod set, berthd holds a
// logind delay inhibitor lock (raising logind's InhibitDelayMaxSec to the
// grace period); `systemctl poweroff` has it stop the regular pods first
// and the critical ones after, each getting SIGTERM and time to exit,
// before the shutdown goes on; a restart of the service stops nothing.
func TestGracefulNodeShutdown(t *testing.T) {
	skipUnlessVM(t)
	g := newGuest(t, "guest-shutdown.sh")
	notes := func(name, extra string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[1]s}
spec:
  terminationGracePeriodSeconds: 5
%[2]s  containers:
  - name: main
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'echo %[1]s >>/results/order; exit 0' TERM; while true; do sleep 1 & wait; done"]
    volumeMounts: [{name: results, mountPath: /results}]
  volumes:
  - {name: results, hostPath: {path: /var/lib/results}}
`, name, extra)
	}
	g.write("regular.yaml", notes("regular", ""))
	g.write("critical.yaml", notes("critical", "  priorityClassName: system-node-critical\n"))
	res := g.boot()
	want(t, res, map[string]string{
		"start": "0", "import": "0", "running": "2", "restart": "0", "running_after_restart": "2",
		"stopped_by_restart": "", "done": "yes",
	})
	if !strings.Contains(res["inhibitor"], "30000000") {
		t.Errorf("logind's InhibitDelayMaxUSec is %q, want berth's 30 s", res["inhibitor"])
	}
	if order := g.readDisk("/var/lib/results/order"); order != "regular\ncritical\n" {
		t.Errorf("the pods noted their SIGTERM as %q, want regular, then critical", order)
	}
	journal := g.readDisk("/var/lib/results/journal.txt")
	if os.Getenv("BERTH_VM_LOGS") != "" {
		t.Logf("berthd's journal:\n%s", journal)
	}
	for _, want := range []string{"holding a delay inhibitor lock", "node shutting down: stopping its pods", "kind=regular", "kind=critical",
		"pods stopped; the shutdown goes on"} {
		if !strings.Contains(journal, want) {
			t.Errorf("berthd's journal lacks %q:\n%s", want, journal)
		}
	}
}
