package kubeletapi

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/diskusage"
)

func TestPodStats(t *testing.T) {
	now := time.Unix(1000, 0)
	sandbox := func(id, name string, ready bool, created int64) *runtimeapi.PodSandbox {
		st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if ready {
			st = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		return &runtimeapi.PodSandbox{Id: id, State: st, CreatedAt: created,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: "uid-" + id}}
	}
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	ctrStats := func(id, name string, mem uint64) *runtimeapi.ContainerStats {
		cs := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}}}
		if mem > 0 {
			cs.Memory = &runtimeapi.MemoryUsage{Timestamp: 900e9, WorkingSetBytes: u(mem), UsageBytes: u(mem + 1)}
			cs.Cpu = &runtimeapi.CpuUsage{Timestamp: 900e9, UsageCoreNanoSeconds: u(5e9), UsageNanoCores: u(1e6)}
			cs.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: 900e9, UsedBytes: u(4096), InodesUsed: u(3)}
		}
		return cs
	}
	sandboxes := []*runtimeapi.PodSandbox{
		sandbox("web-old", "web", false, 100), sandbox("web-new", "web", true, 200), // the ready one counts
		sandbox("job-1", "job", false, 100), sandbox("job-2", "job", false, 300), // none ready: the latest
	}
	running := []*runtimeapi.Container{{Id: "app", CreatedAt: 250}, {Id: "side", CreatedAt: 260}}
	stats := []*runtimeapi.PodSandboxStats{
		{Attributes: &runtimeapi.PodSandboxAttributes{Id: "web-old"}, Linux: &runtimeapi.LinuxPodSandboxStats{}},
		{Attributes: &runtimeapi.PodSandboxAttributes{Id: "web-new"}, Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:     &runtimeapi.CpuUsage{Timestamp: 900e9, UsageCoreNanoSeconds: u(7e9)},
			Memory:  &runtimeapi.MemoryUsage{Timestamp: 900e9, WorkingSetBytes: u(3 << 20)},
			Network: &runtimeapi.NetworkUsage{Timestamp: 900e9, DefaultInterface: &runtimeapi.NetworkInterfaceUsage{Name: "eth0", RxBytes: u(10)}},
			Process: &runtimeapi.ProcessUsage{ProcessCount: u(2)},
			// "gone" exited: it is not among the running containers.
			Containers: []*runtimeapi.ContainerStats{ctrStats("app", "app", 2<<20), ctrStats("side", "side", 0), ctrStats("gone", "app", 1)},
		}},
		{Attributes: &runtimeapi.PodSandboxAttributes{Id: "job-1"}, Linux: &runtimeapi.LinuxPodSandboxStats{}},
		{Attributes: &runtimeapi.PodSandboxAttributes{Id: "job-2"}, Linux: &runtimeapi.LinuxPodSandboxStats{}},
	}
	containerFs := &statsapi.FsStats{CapacityBytes: ptr.To[uint64](1 << 30), AvailableBytes: ptr.To[uint64](1 << 29)}
	disks := map[string]podDisk{"uid-web-new": {
		logs:    map[string]diskusage.Usage{"app": {Bytes: 8192, Inodes: 2}},
		volumes: map[string]diskusage.Usage{"data": {Bytes: 1 << 20, Inodes: 3}, "cache": {Bytes: 4096, Inodes: 1}},
		logsFs:  &statsapi.FsStats{CapacityBytes: ptr.To[uint64](10 << 30)},
	}}
	got := podStats(sandboxes, running, stats, containerFs, disks, now)

	if len(got) != 2 || got[0].PodRef.Name != "job" || got[0].PodRef.UID != "uid-job-2" || got[1].PodRef.UID != "uid-web-new" {
		t.Fatalf("pods %+v, want job (its latest sandbox) and web (its ready one)", got)
	}
	web := got[1]
	if !web.StartTime.Time.Equal(time.Unix(0, 200)) || *web.CPU.UsageCoreNanoSeconds != 7e9 || *web.Memory.WorkingSetBytes != 3<<20 ||
		*web.Network.RxBytes != 10 || web.Network.Name != "eth0" || *web.ProcessStats.ProcessCount != 2 {
		t.Errorf("web %+v", web)
	}
	if len(web.Containers) != 2 {
		t.Fatalf("containers %+v, want app and side", web.Containers)
	}
	app, side := web.Containers[0], web.Containers[1]
	if app.Name != "app" || !app.StartTime.Time.Equal(time.Unix(0, 250)) || *app.Memory.WorkingSetBytes != 2<<20 || *app.CPU.UsageNanoCores != 1e6 ||
		*app.Rootfs.UsedBytes != 4096 || *app.Rootfs.CapacityBytes != 1<<30 {
		t.Errorf("app %+v", app)
	}
	if app.Logs == nil || *app.Logs.UsedBytes != 8192 || *app.Logs.CapacityBytes != 10<<30 || side.Logs != nil {
		t.Errorf("logs: app %+v, side %+v", app.Logs, side.Logs)
	}
	if len(web.VolumeStats) != 2 || web.VolumeStats[0].Name != "cache" || web.VolumeStats[1].Name != "data" || *web.VolumeStats[1].UsedBytes != 1<<20 {
		t.Errorf("volumes %+v, want cache and data, by name", web.VolumeStats)
	}
	// The writable layer (4096), the log (8192) and the two emptyDirs.
	if e := web.EphemeralStorage; e == nil || *e.UsedBytes != 4096+8192+1<<20+4096 || *e.InodesUsed != 2+3+1+ptr.Deref(app.Rootfs.InodesUsed, 0) {
		t.Errorf("ephemeral storage %+v", e)
	}
	if got[0].EphemeralStorage != nil {
		t.Errorf("job: ephemeral storage %+v with nothing measured", got[0].EphemeralStorage)
	}
	// Not measured: zeros at the time of asking, as kubelet reports them.
	if *side.Memory.WorkingSetBytes != 0 || *side.CPU.UsageCoreNanoSeconds != 0 || !side.CPU.Time.Time.Equal(now) || side.Rootfs != nil {
		t.Errorf("side %+v", side)
	}
	if job := got[0]; job.CPU != nil || len(job.Containers) != 0 || job.Containers == nil {
		t.Errorf("job %+v: want no figures and an empty container list", job)
	}

	only := cpuAndMemoryOnly(statsapi.Summary{Pods: got})
	if c := only.Pods[1].Containers[0]; c.Rootfs != nil || c.Memory == nil || only.Pods[1].Network != nil {
		t.Errorf("only CPU and memory: %+v", only.Pods[1])
	}
}
