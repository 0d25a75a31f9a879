package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// requireCgroupV1 skips tests that read limits from the v1 hierarchies.
func requireCgroupV1(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("needs cgroup v1 (the memory hierarchy at /sys/fs/cgroup/memory)")
	}
}

// cgroupFile reads a v1 cgroup file of the cgroup at path, as the node
// sees it; subsysFile is like "memory/memory.limit_in_bytes".
func cgroupFile(t *testing.T, path, subsysFile string) string {
	t.Helper()
	subsys, name, _ := strings.Cut(subsysFile, "/")
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", subsys, path, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func (e *env) updateResources(id string, r *runtimeapi.LinuxContainerResources) error {
	_, err := e.rt.UpdateContainerResources(ctx(e.t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: r})
	return err
}

func TestUpdateContainerResourcesLive(t *testing.T) {
	requireCgroupV1(t)
	e := newEnv(t)
	pod := e.podConfig("resize")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"},
		withMemoryLimit(64<<20), withCPU(512, 50000, 100000)))
	path := e.cgroupsPath(id)

	// Only what the request sets changes: shares and period stay.
	if err := e.updateResources(id, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuQuota: 20000}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	want := map[string]string{
		"memory/memory.limit_in_bytes": strconv.Itoa(128 << 20),
		"cpu/cpu.cfs_quota_us":         "20000",
		"cpu/cpu.cfs_period_us":        "100000",
		"cpu/cpu.shares":               "512",
	}
	for f, v := range want {
		if got := cgroupFile(t, path, f); got != v {
			t.Errorf("%s = %s, want %s", f, got, v)
		}
	}
	wantReported := func(when string) {
		t.Helper()
		r := e.status(id).GetResources().GetLinux()
		if r.GetMemoryLimitInBytes() != 128<<20 || r.GetCpuQuota() != 20000 || r.GetCpuPeriod() != 100000 || r.GetCpuShares() != 512 {
			t.Errorf("%s: ContainerStatus.resources = %v", when, r)
		}
	}
	wantReported("after the update")

	// All or nothing: runc refuses the cpuset, so the memory limit of the
	// same request is not applied or recorded either.
	err := e.updateResources(id, &runtimeapi.LinuxContainerResources{CpusetCpus: "4095", MemoryLimitInBytes: 256 << 20})
	if err == nil {
		t.Fatal("update with a CPU the node lacks succeeded")
	}
	if got := cgroupFile(t, path, "memory/memory.limit_in_bytes"); got != strconv.Itoa(128<<20) {
		t.Errorf("after a refused update memory.limit_in_bytes = %s, want the previous 128Mi", got)
	}
	wantReported("after a refused update")

	// The record survives a restart of berthd.
	e.restart()
	wantReported("after a restart")

	// Exited containers cannot be updated.
	e.stop(id, 0)
	err = e.updateResources(id, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20})
	wantCode(t, "update of an exited container", err, codes.FailedPrecondition, "exited")
}

func TestUpdateCreatedContainerStartsWithNewLimits(t *testing.T) {
	requireCgroupV1(t)
	e := newEnv(t)
	pod := e.podConfig("resize-created")
	podID := e.runPod(pod)
	id := e.create(podID, pod, containerConfig("app", []string{"sleep", "3600"}, withMemoryLimit(64<<20)))

	if err := e.updateResources(id, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuShares: 256}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if r := e.status(id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuShares() != 256 {
		t.Errorf("ContainerStatus.resources of the created container = %v", r)
	}
	if _, err := e.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	path := e.cgroupsPath(id)
	if got := cgroupFile(t, path, "memory/memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory.limit_in_bytes = %s, want 96Mi", got)
	}
	if got := cgroupFile(t, path, "cpu/cpu.shares"); got != "256" {
		t.Errorf("cpu.shares = %s, want 256", got)
	}
}

func TestUpdateContainerResourcesBadRequests(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("resize-bad")
	podID := e.runPod(pod)
	id := e.create(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	err := e.updateResources("0123456789abcdef", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 26})
	wantCode(t, "update of an unknown container", err, codes.NotFound, "0123456789abcdef")
	_, err = e.rt.UpdateContainerResources(ctx(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id})
	wantCode(t, "update without linux resources", err, codes.InvalidArgument, "linux")
	err = e.updateResources(id, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5})
	wantCode(t, "update with a negative limit", err, codes.InvalidArgument, "memory_limit_in_bytes")
	if r := e.status(id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 0 {
		t.Errorf("a refused update was recorded: %v", r)
	}
}

func TestUpdatePodSandboxResources(t *testing.T) {
	requireCgroupV1(t)
	e := newEnv(t)
	pod := e.podConfig("resize-pod")
	podID := e.runPod(pod)
	resp, err := e.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		CgroupParent string `json:"cgroupParent"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.CgroupParent == "" {
		t.Fatalf("verbose info %q: no cgroupParent (%v)", resp.GetInfo()["info"], err)
	}
	// The pause process's own cgroup (cgroupfs driver) carries the pod's total.
	pause := filepath.Join(info.CgroupParent, podID)

	_, err = e.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20, CpuShares: 2048},
		Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20},
	})
	if err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	if got := cgroupFile(t, pause, "memory/memory.limit_in_bytes"); got != strconv.Itoa(256<<20) {
		t.Errorf("pause memory.limit_in_bytes = %s, want 256Mi", got)
	}
	if got := cgroupFile(t, pause, "cpu/cpu.shares"); got != "2048" {
		t.Errorf("pause cpu.shares = %s, want 2048", got)
	}

	_, err = e.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID, Resources: &runtimeapi.LinuxContainerResources{CpuShares: -1},
	})
	wantCode(t, "pod update with negative shares", err, codes.InvalidArgument, "cpu_shares")
	_, err = e.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "0123456789abcdef"})
	wantCode(t, "update of an unknown pod", err, codes.NotFound, "0123456789abcdef")
	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	_, err = e.rt.UpdatePodSandboxResources(ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID, Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 28},
	})
	wantCode(t, "update of a stopped pod", err, codes.FailedPrecondition, "not ready")
}

func TestRuntimeStatusVerboseAndCheckpoint(t *testing.T) {
	e := newEnv(t)
	resp, err := e.rt.Status(ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RootDir            string `json:"rootDir"`
		StateDir           string `json:"stateDir"`
		CgroupDriver       string `json:"cgroupDriver"`
		DefaultRuntimeName string `json:"defaultRuntimeName"`
		Runtimes           map[string]struct {
			Binary  string `json:"binary"`
			Version struct {
				Version string `json:"version"`
			} `json:"version"`
		} `json:"runtimes"`
		CNI struct {
			ConfDir string `json:"confDir"`
		} `json:"cni"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["config"]), &cfg); err != nil {
		t.Fatalf("info[config] = %q: %v", resp.GetInfo()["config"], err)
	}
	runc := cfg.Runtimes["runc"]
	if cfg.RootDir != e.d.Root || cfg.StateDir != e.d.State || cfg.CgroupDriver != "cgroupfs" ||
		cfg.DefaultRuntimeName != "runc" || runc.Binary != filepath.Join(e.d.Bin, "runc") || runc.Version.Version == "" ||
		!strings.HasPrefix(cfg.CNI.ConfDir, e.d.Dir) {
		t.Errorf("info[config] = %s", resp.GetInfo()["config"])
	}
	if s := resp.GetInfo()["lastCNILoadStatus"]; s != `"OK"` {
		t.Errorf("info[lastCNILoadStatus] = %s", s)
	}
	if quiet, err := e.rt.Status(ctx(t), &runtimeapi.StatusRequest{}); err != nil || len(quiet.GetInfo()) != 0 {
		t.Errorf("Status without verbose has info %v (%v)", quiet.GetInfo(), err)
	}

	pod := e.podConfig("checkpoint")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))
	_, err = e.rt.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: filepath.Join(e.d.Dir, "cp.tar")})
	wantCode(t, "CheckpointContainer", err, codes.Unimplemented, "checkpoint")
	_, err = e.rt.CheckpointContainer(ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: "0123456789abcdef"})
	wantCode(t, "CheckpointContainer of an unknown container", err, codes.NotFound, "0123456789abcdef")
}
