package kubeletapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/container/common"
	"github.com/google/cadvisor/lib/container/libcontainer"
	"github.com/google/cadvisor/lib/machine"
	info "github.com/google/cadvisor/lib/model"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// ImageFS is the slice of the CRI's image service the summary needs: the
// filesystems holding images and containers' writable layers.
type ImageFS interface {
	ImageFsInfo(ctx context.Context, in *runtimeapi.ImageFsInfoRequest, opts ...grpc.CallOption) (*runtimeapi.ImageFsInfoResponse, error)
}

// defaultInterface is the node's interface the summary reports first, as
// kubelet's (network.DefaultInterfaceName).
const defaultInterface = "eth0"

// nodeStats measures the node as kubelet's summary does: its root cgroup
// through cAdvisor (CPU, memory, network), the filesystem of berth's root
// directory, and the runtime's image filesystem.
type nodeStats struct {
	root     *libcontainer.Handler
	memory   uint64 // the machine's
	rootDir  string
	imageFS  ImageFS
	clock    clock.PassiveClock
	mu       sync.Mutex
	lastCPU  uint64 // cumulative ns, at lastTime
	lastTime time.Time
}

func newNodeStats(rootDir string, imageFS ImageFS, clk clock.PassiveClock) (*nodeStats, error) {
	metrics := container.MetricSet{container.CpuUsageMetrics: {}, container.MemoryUsageMetrics: {}, container.NetworkUsageMetrics: {}}
	subsystems, err := libcontainer.GetCgroupSubsystems(metrics)
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	paths := common.MakeCgroupPaths(subsystems, "/")
	delete(paths, "pids") // the root has no pids.current (as cAdvisor's raw handler does)
	mgr, err := libcontainer.NewCgroupManager("/", paths)
	if err != nil {
		return nil, fmt.Errorf("root cgroup: %w", err)
	}
	memory, err := machine.GetMachineMemoryCapacity()
	if err != nil {
		return nil, fmt.Errorf("machine memory: %w", err)
	}
	// pid 1's network namespace is the node's.
	return &nodeStats{root: libcontainer.NewHandler(mgr, "/", 1, metrics), memory: memory, rootDir: rootDir, imageFS: imageFS, clock: clk}, nil
}

// read measures the node now. CPU usage in nano cores is the rate since
// the previous reading, and unknown at the first.
func (n *nodeStats) read(ctx context.Context) (statsapi.NodeStats, error) {
	st, err := n.root.GetStats()
	if err != nil {
		return statsapi.NodeStats{}, fmt.Errorf("root cgroup: %w", err)
	}
	now := n.clock.Now()
	var boot unix.Sysinfo_t
	if err := unix.Sysinfo(&boot); err != nil {
		return statsapi.NodeStats{}, fmt.Errorf("sysinfo: %w", err)
	}
	out := statsapi.NodeStats{
		StartTime: metav1.NewTime(now.Add(-time.Duration(boot.Uptime) * time.Second).Truncate(time.Second)),
		CPU:       &statsapi.CPUStats{Time: metav1.NewTime(st.Timestamp), UsageCoreNanoSeconds: ptr.To(st.Cpu.Usage.Total), UsageNanoCores: n.nanoCores(st)},
		Memory:    nodeMemory(st, n.memory),
		Network:   nodeNetwork(st),
	}
	if out.Fs, err = filesystem(n.rootDir, now); err != nil {
		return statsapi.NodeStats{}, err
	}
	if out.Runtime, err = n.runtimeFS(ctx, now); err != nil {
		return statsapi.NodeStats{}, err
	}
	return out, nil
}

// prime takes a first CPU reading, so that the first summary has a rate.
func (n *nodeStats) prime() {
	if st, err := n.root.GetStats(); err == nil {
		n.nanoCores(st)
	}
}

func (n *nodeStats) nanoCores(st *info.ContainerStats) *uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var rate *uint64
	if elapsed := st.Timestamp.Sub(n.lastTime); !n.lastTime.IsZero() && elapsed > 0 && st.Cpu.Usage.Total >= n.lastCPU {
		rate = ptr.To(uint64(float64(st.Cpu.Usage.Total-n.lastCPU) / elapsed.Seconds()))
	}
	n.lastCPU, n.lastTime = st.Cpu.Usage.Total, st.Timestamp
	return rate
}

// nodeMemory is the root cgroup's memory; what is available is the
// machine's memory less the working set, as kubelet computes it.
func nodeMemory(st *info.ContainerStats, capacity uint64) *statsapi.MemoryStats {
	m := st.Memory
	available := uint64(0)
	if capacity > m.WorkingSet {
		available = capacity - m.WorkingSet
	}
	return &statsapi.MemoryStats{Time: metav1.NewTime(st.Timestamp), AvailableBytes: &available, UsageBytes: ptr.To(m.Usage),
		WorkingSetBytes: ptr.To(m.WorkingSet), RSSBytes: ptr.To(m.RSS), PageFaults: ptr.To(m.ContainerData.Pgfault),
		MajorPageFaults: ptr.To(m.ContainerData.Pgmajfault)}
}

func nodeNetwork(st *info.ContainerStats) *statsapi.NetworkStats {
	out := &statsapi.NetworkStats{Time: metav1.NewTime(st.Timestamp)}
	for _, i := range st.Network.Interfaces {
		is := statsapi.InterfaceStats{Name: i.Name, RxBytes: ptr.To(i.RxBytes), RxErrors: ptr.To(i.RxErrors), TxBytes: ptr.To(i.TxBytes), TxErrors: ptr.To(i.TxErrors)}
		out.Interfaces = append(out.Interfaces, is)
		if i.Name == defaultInterface {
			out.InterfaceStats = is
		}
	}
	return out
}

// runtimeFS is the runtime's image filesystem and the one of its
// containers' writable layers (the same when it names none).
func (n *nodeStats) runtimeFS(ctx context.Context, now time.Time) (*statsapi.RuntimeStats, error) {
	resp, err := n.imageFS.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, runtimeError(err, "image filesystem")
	}
	usage := func(us []*runtimeapi.FilesystemUsage) (*statsapi.FsStats, error) {
		if len(us) == 0 {
			return nil, nil
		}
		u := us[0]
		fs, err := filesystem(u.GetFsId().GetMountpoint(), now)
		if err != nil {
			return nil, err
		}
		fs.Time, fs.UsedBytes, fs.InodesUsed = nanoTime(u.GetTimestamp()), value(u.GetUsedBytes()), value(u.GetInodesUsed())
		return fs, nil
	}
	out := &statsapi.RuntimeStats{}
	if out.ImageFs, err = usage(resp.GetImageFilesystems()); err != nil {
		return nil, err
	}
	if out.ContainerFs, err = usage(resp.GetContainerFilesystems()); err != nil {
		return nil, err
	}
	if out.ContainerFs == nil {
		out.ContainerFs = out.ImageFs
	}
	return out, nil
}

// filesystem is the size and use of the filesystem holding path.
func filesystem(path string, now time.Time) (*statsapi.FsStats, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nil, fmt.Errorf("filesystem of %s: %w", path, err)
	}
	bsize := uint64(fs.Bsize)
	return &statsapi.FsStats{Time: metav1.NewTime(now), CapacityBytes: ptr.To(fs.Blocks * bsize), AvailableBytes: ptr.To(fs.Bavail * bsize),
		UsedBytes: ptr.To((fs.Blocks - fs.Bfree) * bsize), Inodes: ptr.To(fs.Files), InodesFree: ptr.To(fs.Ffree), InodesUsed: ptr.To(fs.Files - fs.Ffree)}, nil
}
