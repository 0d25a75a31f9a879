package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResourceLimitsInCgroups(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("needs cgroup v1 (the memory hierarchy at /sys/fs/cgroup/memory)")
	}
	e := newEnv(t)
	pod := e.podConfig("limits")
	podID := e.runPod(pod)
	const mem = 64 << 20
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}, withContainerPID(),
		withMemoryLimit(mem), withCPU(512, 50000, 100000), withCpusetCpus("0")))

	want := map[string]string{
		"memory/memory.limit_in_bytes": strconv.Itoa(mem),
		"cpu/cpu.shares":               "512",
		"cpu/cpu.cfs_quota_us":         "50000",
		"cpu/cpu.cfs_period_us":        "100000",
		"cpuset/cpuset.cpus":           "0",
	}
	// No swap past the memory limit, as containerd sets it (where the
	// kernel accounts swap).
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		want["memory/memory.memsw.limit_in_bytes"] = strconv.Itoa(mem)
	}
	// As the container sees its cgroups, and as the node does.
	cgroupsPath := e.cgroupsPath(id)
	for file, v := range want {
		if got := e.mustExec(id, "cat", "/sys/fs/cgroup/"+file); got != v {
			t.Errorf("inside: %s = %q, want %q", file, got, v)
		}
		subsys, name, _ := strings.Cut(file, "/")
		host := filepath.Join("/sys/fs/cgroup", subsys, cgroupsPath, name)
		if data, err := os.ReadFile(host); err != nil || strings.TrimSpace(string(data)) != v {
			t.Errorf("host: %s = %q (%v), want %q", host, data, err, v)
		}
	}
	// The cpuset really confines the process.
	if got := e.statusField(id, "Cpus_allowed_list"); got != "0" {
		t.Errorf("Cpus_allowed_list = %q, want 0", got)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("oomscore")
	podID := e.runPod(pod)
	show := []string{"cat", "/proc/self/oom_score_adj"}

	st, out := e.runToExit(podID, pod, containerConfig("positive", show, withOOMScoreAdj(500)))
	if st.GetExitCode() != 0 || out != "500\n" {
		t.Errorf("oom_score_adj 500: exit %d, read %q; want 500", st.GetExitCode(), out)
	}
	// Processes exec'd in the container get it too.
	id := e.start(podID, pod, containerConfig("running", []string{"sleep", "3600"}, withOOMScoreAdj(500)))
	if got := e.mustExec(id, show...); got != "500" {
		t.Errorf("exec: oom_score_adj = %q, want 500", got)
	}

	// A negative value is clamped to what the runtime may set rather than
	// failing the container: without CAP_SYS_RESOURCE, berthd's own score.
	want := -500
	if !hostHasCap(t, capSysResource) {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(e.d.Pid()), "oom_score_adj"))
		if err != nil {
			t.Fatal(err)
		}
		own, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		want = max(want, own)
	}
	st, out = e.runToExit(podID, pod, containerConfig("negative", show, withOOMScoreAdj(-500)))
	if st.GetExitCode() != 0 || out != strconv.Itoa(want)+"\n" {
		t.Errorf("oom_score_adj -500: exit %d, read %q; want %d", st.GetExitCode(), out, want)
	}
}

func TestOOMKilled(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("oom")
	podID := e.runPod(pod)
	// The shell holds the whole command substitution in memory: 200 MB
	// against a 32 MiB limit.
	st, _ := e.runToExit(podID, pod, containerConfig("hog",
		[]string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}`},
		withMemoryLimit(32<<20)))
	if st.GetExitCode() != 137 || st.GetReason() != "OOMKilled" {
		t.Errorf("memory hog: exit %d reason %q, want 137 OOMKilled", st.GetExitCode(), st.GetReason())
	}

	// A container that stays within its limit is not reported OOMKilled.
	st, out := e.runToExit(podID, pod, containerConfig("modest",
		[]string{"sh", "-c", `x=$(head -c 1000000 /dev/zero | tr "\0" a); echo ${#x}`},
		withMemoryLimit(32<<20)))
	if st.GetExitCode() != 0 || st.GetReason() != "Completed" || out != "1000000\n" {
		t.Errorf("within limit: exit %d reason %q output %q, want 0 Completed 1000000", st.GetExitCode(), st.GetReason(), out)
	}
}

// cgroupsPath is the container's cgroup path from its verbose status.
func (e *env) cgroupsPath(id string) string {
	e.t.Helper()
	resp, err := e.rt.ContainerStatus(ctx(e.t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		e.t.Fatal(err)
	}
	var info struct {
		CgroupsPath string `json:"cgroupsPath"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.CgroupsPath == "" {
		e.t.Fatalf("verbose info %q: no cgroupsPath (%v)", resp.GetInfo()["info"], err)
	}
	return info.CgroupsPath
}
