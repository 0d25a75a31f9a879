package kubeletapi

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/diskusage"
)

// StatsRuntime is the slice of the CRI the summary is built from, as
// kubelet builds it with PodAndContainerStatsFromCRI: the sandboxes and
// containers (states, start times) and the pods' stats, which hold their
// containers'. Each is one read of the runtime's current state.
type StatsRuntime interface {
	ListPodSandbox(ctx context.Context, in *runtimeapi.ListPodSandboxRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error)
	ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error)
	ListPodSandboxStats(ctx context.Context, in *runtimeapi.ListPodSandboxStatsRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error)
}

// serveSummary answers /stats/summary (only_cpu_and_memory=true leaves
// out the rest, as kubelet's does).
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.summary(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if r.URL.Query().Get("only_cpu_and_memory") == "true" {
		sum = cpuAndMemoryOnly(sum)
	}
	writeJSON(w, sum)
}

func (s *Server) summary(ctx context.Context) (statsapi.Summary, error) {
	sandboxes, err := s.cfg.Stats.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return statsapi.Summary{}, runtimeError(err, "list pod sandboxes")
	}
	containers, err := s.cfg.Stats.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		return statsapi.Summary{}, runtimeError(err, "list containers")
	}
	stats, err := s.cfg.Stats.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil {
		return statsapi.Summary{}, runtimeError(err, "list pod sandbox stats")
	}
	node, err := s.node.read(ctx)
	if err != nil {
		return statsapi.Summary{}, fmt.Errorf("node stats: %w", err)
	}
	node.NodeName = s.cfg.NodeName
	var containerFs *statsapi.FsStats
	if node.Runtime != nil {
		containerFs = node.Runtime.ContainerFs
	}
	now := s.cfg.Clock.Now()
	return statsapi.Summary{Node: node, Pods: podStats(sandboxes.GetItems(), containers.GetContainers(), stats.GetStats(),
		containerFs, s.podDisks(stats.GetStats(), now), now)}, nil
}

// podDisk is what a pod holds on the node's disk besides its writable
// layers: its containers' logs, by container name, and its disk-backed
// emptyDirs, by volume name, with the filesystems they are on.
type podDisk struct {
	logs, volumes     map[string]diskusage.Usage
	logsFs, volumesFs *statsapi.FsStats
}

// podDisks measures the pods' logs and emptyDirs (cached a while: a
// scraper polls the summary).
func (s *Server) podDisks(stats []*runtimeapi.PodSandboxStats, now time.Time) map[string]podDisk {
	out := map[string]podDisk{}
	var logsFs, volumesFs *statsapi.FsStats
	if s.cfg.PodLogsDir != "" {
		logsFs, _ = filesystem(s.cfg.PodLogsDir, now)
	}
	if s.cfg.PodDir != "" {
		volumesFs, _ = filesystem(s.cfg.PodDir, now)
	}
	for _, st := range stats {
		md := st.GetAttributes().GetMetadata()
		if _, done := out[md.GetUid()]; done || md.GetUid() == "" {
			continue
		}
		d := podDisk{logs: map[string]diskusage.Usage{}, volumes: map[string]diskusage.Usage{}, logsFs: logsFs, volumesFs: volumesFs}
		if s.cfg.PodLogsDir != "" {
			dir := filepath.Join(s.cfg.PodLogsDir, md.GetNamespace()+"_"+md.GetName()+"_"+md.GetUid())
			for _, c := range st.GetLinux().GetContainers() {
				name := c.GetAttributes().GetMetadata().GetName()
				if u, err := s.disk.Measure(filepath.Join(dir, name)); err == nil {
					d.logs[name] = u
				}
			}
		}
		if s.cfg.PodDir != "" {
			dir := filepath.Join(s.cfg.PodDir, md.GetUid(), "volumes", "empty-dir")
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if !e.IsDir() {
					continue
				}
				if u, err := s.disk.Measure(filepath.Join(dir, e.Name())); err == nil {
					d.volumes[e.Name()] = u
				}
			}
		}
		out[md.GetUid()] = d
	}
	return out
}

// podStats are the pods' stats: a pod by its sandbox that is ready (or its
// latest, when none is), its containers that run, as kubelet reports
// them. Each container's root filesystem is on containerFs; disks are
// the pods' logs and volumes, by UID. Pure.
func podStats(sandboxes []*runtimeapi.PodSandbox, running []*runtimeapi.Container, stats []*runtimeapi.PodSandboxStats,
	containerFs *statsapi.FsStats, disks map[string]podDisk, now time.Time) []statsapi.PodStats {
	current := currentSandboxes(sandboxes)
	started := map[string]int64{}
	for _, c := range running {
		started[c.GetId()] = c.GetCreatedAt()
	}
	out := []statsapi.PodStats{}
	for _, st := range stats {
		sb, ok := current[st.GetAttributes().GetId()]
		if !ok {
			continue
		}
		md := sb.GetMetadata()
		ps := statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
			StartTime:  metav1.NewTime(time.Unix(0, sb.GetCreatedAt())),
			Containers: []statsapi.ContainerStats{},
		}
		linux := st.GetLinux()
		disk := disks[md.GetUid()]
		for _, cs := range linux.GetContainers() {
			if at, ok := started[cs.GetAttributes().GetId()]; ok {
				c := containerStats(cs, at, containerFs, now)
				if u, ok := disk.logs[c.Name]; ok {
					c.Logs = usageStats(u, disk.logsFs, now)
				}
				ps.Containers = append(ps.Containers, c)
			}
		}
		ps.VolumeStats, ps.EphemeralStorage = volumeAndEphemeralStats(ps.Containers, disk, now)
		if c := linux.GetCpu(); c != nil {
			ps.CPU = &statsapi.CPUStats{Time: nanoTime(c.GetTimestamp()), UsageNanoCores: value(c.GetUsageNanoCores()),
				UsageCoreNanoSeconds: value(c.GetUsageCoreNanoSeconds())}
		}
		if m := linux.GetMemory(); m != nil {
			ps.Memory = memoryStats(m)
		}
		if n := linux.GetNetwork(); n != nil {
			ps.Network = &statsapi.NetworkStats{Time: nanoTime(n.GetTimestamp()), InterfaceStats: interfaceStats(n.GetDefaultInterface())}
			for _, i := range n.GetInterfaces() {
				ps.Network.Interfaces = append(ps.Network.Interfaces, interfaceStats(i))
			}
		}
		if p := linux.GetProcess(); p != nil {
			ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: value(p.GetProcessCount())}
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b statsapi.PodStats) int {
		return cmp.Or(cmp.Compare(a.PodRef.Namespace, b.PodRef.Namespace), cmp.Compare(a.PodRef.Name, b.PodRef.Name))
	})
	return out
}

// volumeAndEphemeralStats are a pod's emptyDirs, by name, and its
// ephemeral storage as kubelet adds it up: the containers' writable
// layers and logs, and its emptyDirs.
func volumeAndEphemeralStats(containers []statsapi.ContainerStats, disk podDisk, now time.Time) ([]statsapi.VolumeStats, *statsapi.FsStats) {
	var used, inodes uint64
	for _, c := range containers {
		for _, fs := range []*statsapi.FsStats{c.Rootfs, c.Logs} {
			if fs != nil {
				used += ptr.Deref(fs.UsedBytes, 0)
				inodes += ptr.Deref(fs.InodesUsed, 0)
			}
		}
	}
	var vols []statsapi.VolumeStats
	for _, name := range slices.Sorted(maps.Keys(disk.volumes)) {
		u := disk.volumes[name]
		vols = append(vols, statsapi.VolumeStats{Name: name, FsStats: *usageStats(u, disk.volumesFs, now)})
		used += u.Bytes
		inodes += u.Inodes
	}
	if disk.logs == nil && disk.volumes == nil && used == 0 {
		return vols, nil // nothing measured
	}
	return vols, usageStats(diskusage.Usage{Bytes: used, Inodes: inodes}, disk.volumesFs, now)
}

// usageStats is a measured use on a filesystem (nil: unknown).
func usageStats(u diskusage.Usage, fs *statsapi.FsStats, now time.Time) *statsapi.FsStats {
	out := &statsapi.FsStats{Time: metav1.NewTime(now), UsedBytes: ptr.To(u.Bytes), InodesUsed: ptr.To(u.Inodes)}
	if fs != nil {
		out.CapacityBytes, out.AvailableBytes, out.Inodes, out.InodesFree = fs.CapacityBytes, fs.AvailableBytes, fs.Inodes, fs.InodesFree
	}
	return out
}

// currentSandboxes keeps, of each pod name's sandboxes, the ready ones or
// else the latest: a pod's stopped sandboxes are history.
func currentSandboxes(sandboxes []*runtimeapi.PodSandbox) map[string]*runtimeapi.PodSandbox {
	byPod := map[string][]*runtimeapi.PodSandbox{}
	for _, sb := range sandboxes {
		k := sb.GetMetadata().GetNamespace() + "/" + sb.GetMetadata().GetName()
		byPod[k] = append(byPod[k], sb)
	}
	out := map[string]*runtimeapi.PodSandbox{}
	for _, sbs := range byPod {
		var latest *runtimeapi.PodSandbox
		ready := false
		for _, sb := range sbs {
			if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
				out[sb.GetId()], ready = sb, true
			}
			if latest == nil || sb.GetCreatedAt() > latest.GetCreatedAt() {
				latest = sb
			}
		}
		if !ready {
			out[latest.GetId()] = latest
		}
	}
	return out
}

// containerStats is one container's, with zeros for what the runtime did
// not measure (kubelet's convention for CPU and memory).
func containerStats(cs *runtimeapi.ContainerStats, createdAt int64, containerFs *statsapi.FsStats, now time.Time) statsapi.ContainerStats {
	out := statsapi.ContainerStats{Name: cs.GetAttributes().GetMetadata().GetName(), StartTime: metav1.NewTime(time.Unix(0, createdAt))}
	if c := cs.GetCpu(); c != nil {
		out.CPU = &statsapi.CPUStats{Time: nanoTime(c.GetTimestamp()), UsageNanoCores: value(c.GetUsageNanoCores()),
			UsageCoreNanoSeconds: value(c.GetUsageCoreNanoSeconds())}
	} else {
		out.CPU = &statsapi.CPUStats{Time: metav1.NewTime(now), UsageNanoCores: ptr.To[uint64](0), UsageCoreNanoSeconds: ptr.To[uint64](0)}
	}
	if m := cs.GetMemory(); m != nil {
		out.Memory = memoryStats(m)
	} else {
		out.Memory = &statsapi.MemoryStats{Time: metav1.NewTime(now), UsageBytes: ptr.To[uint64](0), WorkingSetBytes: ptr.To[uint64](0), RSSBytes: ptr.To[uint64](0)}
	}
	if l := cs.GetWritableLayer(); l != nil {
		out.Rootfs = &statsapi.FsStats{Time: nanoTime(l.GetTimestamp()), UsedBytes: value(l.GetUsedBytes()), InodesUsed: value(l.GetInodesUsed())}
		if containerFs != nil {
			out.Rootfs.CapacityBytes, out.Rootfs.AvailableBytes = containerFs.CapacityBytes, containerFs.AvailableBytes
			out.Rootfs.Inodes, out.Rootfs.InodesFree = containerFs.Inodes, containerFs.InodesFree
		}
	}
	return out
}

func memoryStats(m *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	return &statsapi.MemoryStats{Time: nanoTime(m.GetTimestamp()), AvailableBytes: value(m.GetAvailableBytes()),
		UsageBytes: value(m.GetUsageBytes()), WorkingSetBytes: value(m.GetWorkingSetBytes()), RSSBytes: value(m.GetRssBytes()),
		PageFaults: value(m.GetPageFaults()), MajorPageFaults: value(m.GetMajorPageFaults())}
}

func interfaceStats(i *runtimeapi.NetworkInterfaceUsage) statsapi.InterfaceStats {
	return statsapi.InterfaceStats{Name: i.GetName(), RxBytes: value(i.GetRxBytes()), RxErrors: value(i.GetRxErrors()),
		TxBytes: value(i.GetTxBytes()), TxErrors: value(i.GetTxErrors())}
}

// value is a CRI value as the summary's optional number.
func value(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	n := v.GetValue()
	return &n
}

func nanoTime(ns int64) metav1.Time { return metav1.NewTime(time.Unix(0, ns)) }

// cpuAndMemoryOnly is the summary with CPU and memory figures alone.
func cpuAndMemoryOnly(s statsapi.Summary) statsapi.Summary {
	out := statsapi.Summary{Node: statsapi.NodeStats{NodeName: s.Node.NodeName, StartTime: s.Node.StartTime,
		CPU: s.Node.CPU, Memory: s.Node.Memory}, Pods: []statsapi.PodStats{}}
	for _, p := range s.Pods {
		q := statsapi.PodStats{PodRef: p.PodRef, StartTime: p.StartTime, CPU: p.CPU, Memory: p.Memory, Containers: []statsapi.ContainerStats{}}
		for _, c := range p.Containers {
			q.Containers = append(q.Containers, statsapi.ContainerStats{Name: c.Name, StartTime: c.StartTime, CPU: c.CPU, Memory: c.Memory})
		}
		out.Pods = append(out.Pods, q)
	}
	return out
}
