package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// TestExecHelperEquivalentToRunc runs the same execs in the same
// containers through runc and through berth-exec (berthd restarted in
// between; the containers live on), and compares what the processes
// observe of themselves, exit codes, errors and timeouts.
func TestExecHelperEquivalentToRunc(t *testing.T) {
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.SetLogLevel("debug")
		d.SetExecHelper("")
	})
	e.importProbeImage()
	sleep := []string{"sleep", "3600"}
	pod := e.podConfig("execeq", withPodPID())
	podID := e.runPod(pod)
	hostPod := e.podConfig("execeqhost", withHostNetwork(), withPrivilegedPod())
	hostPodID := e.runPod(hostPod)
	containers := map[string]string{
		"default": e.start(podID, pod, containerConfig("default", sleep, withImage(probeImage))),
		"restricted": e.start(podID, pod, containerConfig("restricted", sleep, withImage(probeImage),
			withRunAsUser(1000), withRunAsGroup(3000), withSupplementalGroups(4000, 5000), withNoNewPrivs(),
			withSeccomp(runtimeapi.SecurityProfile_RuntimeDefault, ""), withCapabilities([]string{"NET_BIND_SERVICE"}, []string{"ALL"}),
			withReadonlyRootfs(), withWorkingDir("/tmp"), withEnv("FOO", "bar"), withOOMScoreAdj(500))),
		"seccomp-no-nnp": e.start(podID, pod, containerConfig("seccomp-no-nnp", sleep, withImage(probeImage),
			withRunAsUser(1000), withSeccomp(runtimeapi.SecurityProfile_RuntimeDefault, ""))),
		"own-pid-ns": e.start(hostPodID, hostPod, containerConfig("own-pid-ns", sleep, withImage(probeImage),
			withNamespaces(runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_CONTAINER))),
		"privileged": e.start(hostPodID, hostPod, containerConfig("privileged", sleep, withImage(probeImage), withPrivileged(),
			withNamespaces(runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE))),
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range containers {
			if !yield(n) {
				return
			}
		}
	})

	type observed struct {
		self     map[string]map[string]string
		exit     int32
		notFound codes.Code
		timeout  codes.Code
	}
	observe := func() observed {
		o := observed{self: map[string]map[string]string{}}
		for _, n := range names {
			stdout, stderr, code := e.exec(containers[n], "/probeserver", "self")
			if code != 0 {
				t.Fatalf("%s: probeserver self: exit %d: %s", n, code, stderr)
			}
			var r map[string]string
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("%s: %v\n%s", n, err, stdout)
			}
			o.self[n] = r
		}
		id := containers["restricted"]
		_, _, o.exit = e.exec(id, "sh", "-c", "exit 3")
		_, err := e.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"no-such-command"}})
		if err == nil || !strings.Contains(err.Error(), `"no-such-command": executable file not found in $PATH`) {
			t.Errorf("exec of a missing command: %v; want an error naming it", err)
		}
		o.notFound = status.Code(err)
		_, err = e.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "61"}, Timeout: 1})
		o.timeout = status.Code(err)
		testutil.Eventually(t, "the timed-out exec to be gone", func() bool {
			return !slices.Contains(strings.Split(e.mustExec(id, "ps", "-o", "args"), "\n"), "sleep 61")
		})
		return o
	}

	viaRunc := observe()
	if n := strings.Count(readFile(t, e.d.LogPath()), "with=berth-exec"); n != 0 {
		t.Fatalf("berthd without an exec helper ran %d execs with berth-exec", n)
	}
	e.d.Kill()
	e.d.SetExecHelper(filepath.Join(e.d.Bin, "berth-exec"))
	if err := e.d.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
	viaHelper := observe()

	log := readFile(t, e.d.LogPath())
	if strings.Contains(log, "exec without runc failed") {
		t.Errorf("berth-exec fell back to runc:\n%s", log)
	}
	if !strings.Contains(log, "with=berth-exec") {
		t.Error("no exec ran with berth-exec")
	}
	for _, n := range names {
		a, b := viaRunc.self[n], viaHelper.self[n]
		for k := range a {
			if k == "status.PPid" && a[k] != "0" {
				continue // the host-side parent (runc, berth-exec) of a process in the node's PID namespace
			}
			if a[k] != b[k] {
				t.Errorf("%s: %s: runc exec %q, berth-exec %q", n, k, a[k], b[k])
			}
		}
	}
	// The comparison has teeth: the containers differ from each other.
	r, d := viaHelper.self["restricted"], viaHelper.self["default"]
	for _, k := range []string{"status.Uid", "status.Groups", "status.CapEff", "status.Seccomp", "status.NoNewPrivs", "cwd", "oom_score_adj"} {
		if r[k] == d[k] {
			t.Errorf("restricted and default containers both have %s %q", k, r[k])
		}
	}
	if !strings.HasSuffix(r["status.Groups"], "4000 5000") || r["fd1 reopen"] != "" || r["unshare"] != "operation not permitted" {
		t.Errorf("restricted container: groups %q, reopen of stdout %q, unshare %q", r["status.Groups"], r["fd1 reopen"], r["unshare"])
	}
	if viaRunc.exit != 3 || viaHelper.exit != 3 {
		t.Errorf("exit 3: runc %d, berth-exec %d", viaRunc.exit, viaHelper.exit)
	}
	if viaRunc.notFound != viaHelper.notFound {
		t.Errorf("missing command: runc %v, berth-exec %v", viaRunc.notFound, viaHelper.notFound)
	}
	if viaRunc.timeout != codes.DeadlineExceeded || viaHelper.timeout != codes.DeadlineExceeded {
		t.Errorf("timeout: runc %v, berth-exec %v; want DeadlineExceeded", viaRunc.timeout, viaHelper.timeout)
	}
	// Where the two differ, berth-exec is the kinder: a background child
	// that keeps the output open does not hold the exec until its timeout
	// (runc, as a subreaper, waits for it).
	if out := e.mustExec(containers["restricted"], "sh", "-c", "sleep 62 & echo hi"); out != "hi" {
		t.Errorf("exec leaving a background child: %q, want hi", out)
	}
}

func withNamespaces(network, pid runtimeapi.NamespaceMode) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: network, Pid: pid}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
