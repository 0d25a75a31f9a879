package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// verboseInfo returns the "info" JSON of a verbose ContainerStatus.
func (e *env) verboseInfo(id string) map[string]any {
	e.t.Helper()
	resp, err := e.rt.ContainerStatus(ctx(e.t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		e.t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		e.t.Fatalf("verbose info of %s: %v", id, err)
	}
	return info
}

func (e *env) pid(id string) int {
	e.t.Helper()
	pid, _ := e.verboseInfo(id)["pid"].(float64)
	if pid <= 0 {
		e.t.Fatalf("container %s has no pid", id)
	}
	return int(pid)
}

func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// A crash of berthd must not touch running containers, and an exit that
// happens while berthd is down must be reported truthfully afterwards.
func TestRestartAfterKillKeepsContainersAndExits(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("survivor")
	podID := e.runPod(pod)
	running := e.start(podID, pod, containerConfig("steady", []string{"sleep", "3600"}))
	waiter := e.start(podID, pod, containerConfig("waiter", []string{"sh", "-c",
		"echo begin; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo end; exit 7"}))
	runningPid := e.pid(running)
	logPath := e.status(waiter).GetLogPath()
	testutil.Eventually(t, "waiter to log begin", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "begin")
	})

	e.d.Kill()

	// While berthd is down, let the waiter finish, and wait until its shim
	// has recorded the exit.
	rootfs := filepath.Join(e.d.Root, "containers", waiter, "rootfs")
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the exit to be recorded", func() bool {
		_, err := os.Stat(filepath.Join(e.d.Root, "containers", waiter, "exit.json"))
		return err == nil
	})
	if !processAlive(runningPid) {
		t.Fatalf("killing berthd killed container process %d", runningPid)
	}

	e.restart()

	st := e.status(running)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("running container is %v after restart", st.GetState())
	}
	if pid := e.pid(running); pid != runningPid {
		t.Errorf("running container pid = %d after restart, want %d", pid, runningPid)
	}
	st = e.status(waiter)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 7 || st.GetReason() != "Error" {
		t.Errorf("waiter: state %v code %d reason %q; want exited, 7, Error", st.GetState(), st.GetExitCode(), st.GetReason())
	}
	if st.GetFinishedAt() <= st.GetStartedAt() {
		t.Errorf("waiter finished at %d, started at %d", st.GetFinishedAt(), st.GetStartedAt())
	}
	data, _ := os.ReadFile(logPath)
	if !strings.Contains(string(data), " stdout F begin\n") || !strings.Contains(string(data), " stdout F end\n") {
		t.Errorf("log is incomplete:\n%s", data)
	}
	if got := e.podStatus(podID).GetState(); got != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox is %v after restart", got)
	}

	// The recovered daemon manages the old containers as before.
	out, _, _ := e.exec(running, "echo", "still here")
	if out != "still here\n" {
		t.Errorf("exec after restart = %q", out)
	}
	e.removePod(podID)
	if processAlive(runningPid) {
		t.Errorf("container process %d survived removal of its pod", runningPid)
	}
}

// A clean restart (SIGTERM) must not stop containers either.
func TestGracefulRestartKeepsContainers(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("calm")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("steady", []string{"sleep", "3600"}))
	pid := e.pid(id)
	e.d.Stop()
	if err := e.d.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
	if !processAlive(pid) || e.status(id).GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container did not survive a graceful restart of berthd")
	}
}

// A killed shim cannot collect exits any more: its containers are reported
// exited with reason ShimLost, never left looking like they run.
func TestKilledShimIsReported(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("orphan")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("steady", []string{"sleep", "3600"}))
	resp, err := e.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ShimPid int    `json:"shimPid"`
		Pid     int    `json:"pid"`
		NetNS   string `json:"netns"`
	}
	json.Unmarshal([]byte(resp.GetInfo()["info"]), &info)
	if info.ShimPid <= 0 || info.Pid <= 0 {
		t.Fatalf("no shim or pause pid in %v", resp.GetInfo())
	}
	ip := resp.GetStatus().GetNetwork().GetIp()
	if err := syscall.Kill(info.ShimPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the shim to be gone", func() bool { return !processAlive(info.ShimPid) || isZombie(info.ShimPid) })

	st := e.status(id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetReason() != "ShimLost" || !strings.Contains(st.GetMessage(), "berth-shim") {
		t.Errorf("after shim kill: state %v reason %q message %q; want exited, ShimLost, a message naming berth-shim",
			st.GetState(), st.GetReason(), st.GetMessage())
	}
	if got := e.podStatus(podID).GetState(); got != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("sandbox of a dead shim is %v, want NOTREADY", got)
	}
	// What the shim ran goes at once, not when the pod is removed: the
	// pause process, the netns, the IP lease and the shim's socket.
	testutil.Eventually(t, "the lost sandbox's pause process, netns, lease and socket released", func() bool {
		_, netnsErr := os.Stat(info.NetNS)
		_, leaseErr := os.Stat(filepath.Join(e.d.IPAMDir(), ip))
		_, sockErr := os.Stat(filepath.Join(e.d.State, "shims", podID+".sock"))
		return (!processAlive(info.Pid) || isZombie(info.Pid)) && os.IsNotExist(netnsErr) && os.IsNotExist(leaseErr) && os.IsNotExist(sockErr)
	})
	e.removePod(podID)
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// slowRunc is a runc that, once told (a flag file), blocks for a while
// after it created and started a container, as if berthd were killed
// while StartContainer waited for it.
const slowRunc = `#!/bin/sh
case " $* " in
*" run "*)
	if rm %[1]s 2>/dev/null; then
		%[2]s "$@"; rc=$?
		touch %[1]s.started
		sleep 3
		exit $rc
	fi;;
esac
exec %[2]s "$@"
`

// A container whose start was under way when berthd was killed is found
// running afterwards (the record said created): berth reports it, its
// PID and its exit, and does not start it a second time.
func TestRestartDuringStartContainer(t *testing.T) {
	var flag string
	e := newEnvWith(t, func(d *harness.Daemon) {
		dir := t.TempDir()
		flag = filepath.Join(dir, "slow")
		wrapper := filepath.Join(dir, "runc")
		if err := os.WriteFile(wrapper, fmt.Appendf(nil, slowRunc, flag, filepath.Join(d.Bin, "runc")), 0o755); err != nil {
			t.Fatal(err)
		}
		d.AddArgs("--runc", wrapper)
	})
	pod := e.podConfig("slowstart")
	podID := e.runPod(pod)
	cfg := containerConfig("app", []string{"sh", "-c", "echo started; exec sleep 3600"})
	id := e.create(podID, pod, cfg)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	go e.rt.StartContainer(context.Background(), &runtimeapi.StartContainerRequest{ContainerId: id})
	testutil.Eventually(t, "runc to have started the container", func() bool {
		_, err := os.Stat(flag + ".started")
		return err == nil
	})
	e.restart()

	st := e.status(id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || st.GetStartedAt() == 0 {
		t.Fatalf("after a restart during its start the container is %s (started at %d), want running", st.GetState(), st.GetStartedAt())
	}
	pid := e.pid(id)
	if !processAlive(pid) {
		t.Errorf("reported pid %d is not alive", pid)
	}
	if out := e.mustExec(id, "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Errorf("exec in the recovered container: %q", out)
	}
	if _, err := e.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a second StartContainer: %v, want FailedPrecondition", err)
	}
	e.stop(id, 1)
	st = e.waitExited(id)
	if st.GetExitCode() != 137 && st.GetExitCode() != 143 || st.GetReason() == "StartError" {
		t.Errorf("stopped: exit %d (%s), want killed by the stop", st.GetExitCode(), st.GetReason())
	}
	data, _ := os.ReadFile(st.GetLogPath())
	if n := strings.Count(string(data), "started"); n != 1 {
		t.Errorf("the log says started %d times:\n%s", n, data)
	}
}
