package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

// usageReader is what the runtime needs to measure its containers and
// pods (cri/stats). All methods are safe for concurrent use and cheap
// enough to call for every container on every stats request.
type usageReader interface {
	// Cgroup samples the cgroup at dir (relative to the hierarchies'
	// roots); one that does not exist is errdefs.ErrNotFound.
	Cgroup(dir string) (stats.Sample, error)
	// CgroupChildren lists the cgroups directly below dir.
	CgroupChildren(dir string) ([]string, error)
	// NanoCores records a sample's CPU usage under key and returns the
	// average rate since the sample kept for key, if there is one.
	NanoCores(key string, s stats.Sample) (uint64, bool)
	// WritableLayer returns the disk usage of the tree at dir, measured
	// at most a few seconds ago; a missing dir is errdefs.ErrNotFound.
	WritableLayer(dir string) (stats.LayerUsage, error)
	// Network reads the interfaces of the network namespace pid is in,
	// which must be the one at nsPath; errdefs.ErrNotFound when pid is
	// gone or elsewhere.
	Network(pid int, nsPath string) (stats.NetworkSample, error)
}

var _ usageReader = (*stats.Collector)(nil)

// writableLayerDir is where a container's writes land: the overlay upper
// directory image.MountRootfs makes inside the container's directory.
const writableLayerDir = "upper"

// ContainerStats reports one container's CPU, memory and writable layer
// usage. A container without a cgroup (created, or exited and cleaned up)
// reports its attributes and writable layer only.
func (s *Service) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	u, err := s.readContainer(c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(c, u)}, nil
}

// ListContainerStats reports the stats of every container matching the
// filter: ID (or prefix), sandbox ID (or prefix) and labels. A container
// whose usage cannot be read is listed with its attributes only, so that
// one bad cgroup does not hide the others.
func (s *Service) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range s.store.Containers() {
		if !strings.HasPrefix(c.Meta.ID, f.GetId()) || !strings.HasPrefix(c.Meta.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		if !matchLabels(c.Config().GetLabels(), f.GetLabelSelector()) {
			continue
		}
		u, err := s.readContainer(c)
		if err != nil {
			s.log.Warn("container stats unreadable", "container", c.Meta.ID, "error", err)
		}
		resp.Stats = append(resp.Stats, s.containerStats(c, u))
	}
	return resp, nil
}

// containerUsage is what could be read of one container; nil parts do
// not exist (no cgroup before start or after cleanup, no writable layer
// while the rootfs is not mounted).
type containerUsage struct {
	cgroup *stats.Sample
	layer  *stats.LayerUsage
}

// readContainer reads a container's cgroup and writable layer. Only a
// failure to read something that exists is an error; what was read
// before it is returned with it.
func (s *Service) readContainer(c *store.Container) (containerUsage, error) {
	var u containerUsage
	sample, err := s.usage.Cgroup(s.cfg.CgroupDriver.Dir(c.Meta.CgroupsPath))
	switch {
	case err == nil:
		u.cgroup = &sample
	case !errors.Is(err, errdefs.ErrNotFound):
		return u, fmt.Errorf("container %s: %w", c.Meta.ID, err)
	}
	layer, err := s.usage.WritableLayer(filepath.Join(c.Dir, writableLayerDir))
	switch {
	case err == nil:
		u.layer = &layer
	case !errors.Is(err, errdefs.ErrNotFound):
		return u, fmt.Errorf("container %s: %w", c.Meta.ID, err)
	}
	return u, nil
}

// containerStats turns a reading into the CRI message, recording the
// CPU sample for the container's usage rate.
func (s *Service) containerStats(c *store.Container, u containerUsage) *runtimeapi.ContainerStats {
	cfg := c.Config()
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id:          c.Meta.ID,
		Metadata:    cfg.GetMetadata(),
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
	}}
	if l := u.layer; l != nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  l.Time.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: l.Mountpoint},
			UsedBytes:  u64(l.Bytes),
			InodesUsed: u64(l.Inodes),
		}
	}
	if sm := u.cgroup; sm != nil {
		rate, ok := s.usage.NanoCores(c.Meta.ID, *sm)
		out.Cpu = cpuUsage(sm, rate, ok)
		out.Memory = memoryUsage(sm)
		out.Swap = swapUsage(sm)
		out.Io = ioUsage(sm)
	}
	return out
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

// cpuUsage leaves usage_nano_cores unset when there is no rate yet (see
// cri/stats): kubelet then derives one from its own previous sample.
func cpuUsage(sm *stats.Sample, nanoCores uint64, hasRate bool) *runtimeapi.CpuUsage {
	out := &runtimeapi.CpuUsage{
		Timestamp:            sm.Time.UnixNano(),
		UsageCoreNanoSeconds: u64(sm.CPU.UsageNanos),
		Psi:                  psiStats(sm.CPUPressure),
	}
	if hasRate {
		out.UsageNanoCores = u64(nanoCores)
	}
	return out
}

// memoryUsage reports available_bytes only under a limit.
func memoryUsage(sm *stats.Sample) *runtimeapi.MemoryUsage {
	m := sm.Memory
	out := &runtimeapi.MemoryUsage{
		Timestamp:       sm.Time.UnixNano(),
		WorkingSetBytes: u64(m.WorkingSet),
		UsageBytes:      u64(m.Usage),
		RssBytes:        u64(m.RSS),
		PageFaults:      u64(m.PageFaults),
		MajorPageFaults: u64(m.MajorPageFaults),
		Psi:             psiStats(sm.MemoryPressure),
	}
	if m.Limit > 0 {
		out.AvailableBytes = u64(m.Limit - min(m.Limit, m.WorkingSet))
	}
	return out
}

// swapUsage is nil without swap accounting.
func swapUsage(sm *stats.Sample) *runtimeapi.SwapUsage {
	m := sm.Memory
	if !m.SwapKnown {
		return nil
	}
	out := &runtimeapi.SwapUsage{Timestamp: sm.Time.UnixNano(), SwapUsageBytes: u64(m.Swap)}
	if m.SwapLimit > 0 {
		out.SwapAvailableBytes = u64(m.SwapLimit - min(m.SwapLimit, m.Swap))
	}
	return out
}

// ioUsage carries only I/O pressure, so it is nil where there is none.
func ioUsage(sm *stats.Sample) *runtimeapi.IoUsage {
	if sm.IOPressure == nil {
		return nil
	}
	return &runtimeapi.IoUsage{Timestamp: sm.Time.UnixNano(), Psi: psiStats(sm.IOPressure)}
}

func psiStats(p *stats.Pressure) *runtimeapi.PsiStats {
	if p == nil {
		return nil
	}
	conv := func(d stats.PressureData) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: d.TotalNanos, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtimeapi.PsiStats{Some: conv(p.Some), Full: conv(p.Full)}
}
