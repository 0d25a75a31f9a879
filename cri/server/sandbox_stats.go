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

// PodSandboxStats reports a pod's CPU, memory, process count and network
// usage, with the stats of each of its containers.
func (s *Service) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	u, err := s.readSandbox(sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.sandboxStats(sb, u)}, nil
}

// ListPodSandboxStats reports the stats of every sandbox matching the
// filter: ID (or prefix) and labels. A pod whose usage cannot be read is
// listed with what could be.
func (s *Service) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range s.store.Sandboxes() {
		if !strings.HasPrefix(sb.Meta.ID, f.GetId()) || !matchLabels(sb.Config().GetLabels(), f.GetLabelSelector()) {
			continue
		}
		u, err := s.readSandbox(sb)
		if err != nil {
			s.log.Warn("pod stats unreadable", "sandbox", sb.Meta.ID, "error", err)
		}
		resp.Stats = append(resp.Stats, s.sandboxStats(sb, u))
	}
	return resp, nil
}

// podUsage is what could be read of a pod; nil parts do not exist.
type podUsage struct {
	cgroup     *stats.Sample // the pod as a whole
	cgroupDir  string        // what cgroup measured it: its parent, or "" for a sum
	network    *stats.NetworkSample
	containers []*store.Container
	usage      []containerUsage // of containers, index for index
}

// readSandbox reads a pod and its containers. A container that cannot be
// read is logged and reported without usage; only a failure to read the
// pod's own cgroup or network is the pod's error.
func (s *Service) readSandbox(sb *store.Sandbox) (podUsage, error) {
	u := podUsage{containers: s.store.SandboxContainers(sb.Meta.ID)}
	own := map[string]bool{filepath.Base(s.cfg.CgroupDriver.Dir(s.cfg.CgroupDriver.Path(sb.Meta.CgroupParent, sb.Meta.ID))): true}
	for _, c := range u.containers {
		cu, err := s.readContainer(c)
		if err != nil {
			s.log.Warn("container stats unreadable", "container", c.Meta.ID, "error", err)
		}
		u.usage = append(u.usage, cu)
		own[filepath.Base(s.cfg.CgroupDriver.Dir(c.Meta.CgroupsPath))] = true
	}
	var err error
	if u.cgroup, u.cgroupDir, err = s.readPodCgroup(sb, u.usage, own); err != nil {
		return u, fmt.Errorf("sandbox %s: %w", sb.Meta.ID, err)
	}
	st := sb.Status()
	if sb.Meta.NetNS == "" || st.State != store.SandboxReady || st.Pid <= 0 {
		return u, nil // host network (the node's, not the pod's) or gone
	}
	ns, err := s.usage.Network(st.Pid, sb.Meta.NetNS)
	switch {
	case err == nil:
		u.network = &ns
	case !errors.Is(err, errdefs.ErrNotFound):
		return u, fmt.Errorf("sandbox %s: %w", sb.Meta.ID, err)
	}
	return u, nil
}

// readPodCgroup measures the pod as a whole: through its cgroup parent
// when that holds the pod alone (see ownsCgroupParent), else as the sum
// of its pause and container cgroups. nil when none of them exists.
func (s *Service) readPodCgroup(sb *store.Sandbox, containers []containerUsage, own map[string]bool) (*stats.Sample, string, error) {
	parentDir := s.cfg.CgroupDriver.Dir(sb.Meta.CgroupParent)
	if children, err := s.usage.CgroupChildren(parentDir); err == nil && ownsCgroupParent(parentDir, sb.Config().GetMetadata().GetUid(), children, own) {
		sm, err := s.usage.Cgroup(parentDir)
		if err == nil {
			return &sm, parentDir, nil
		}
		if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, "", err
		}
	}
	var sum *stats.Sample
	add := func(sm stats.Sample) {
		if sum == nil {
			sum = &sm
			return
		}
		*sum = sum.Add(sm)
	}
	pause, err := s.usage.Cgroup(s.cfg.CgroupDriver.Dir(s.cfg.CgroupDriver.Path(sb.Meta.CgroupParent, sb.Meta.ID)))
	switch {
	case err == nil:
		add(pause)
	case !errors.Is(err, errdefs.ErrNotFound):
		return nil, "", err
	}
	for _, cu := range containers {
		if cu.cgroup != nil {
			add(*cu.cgroup)
		}
	}
	return sum, "", nil
}

// ownsCgroupParent reports whether a pod's cgroup parent measures that pod
// alone: a parent named for the pod, as kubelet names them ("pod<uid>",
// or its systemd form "…-pod<uid with _ for ->.slice"), holding no
// cgroup but the pod's own (own: names of its pause and container
// cgroups). A parent shared by pods (berth's default, a QoS level) also
// holds what removed pods left charged to it, so such pods are measured
// as the sum of their own cgroups instead.
func ownsCgroupParent(parentDir, uid string, children []string, own map[string]bool) bool {
	if uid == "" {
		return false
	}
	base := filepath.Base(parentDir)
	if !strings.Contains(base, "pod"+uid) && !strings.Contains(base, "pod"+strings.ReplaceAll(uid, "-", "_")) {
		return false
	}
	for _, c := range children {
		if !own[c] {
			return false
		}
	}
	return true
}

// sandboxStats turns a reading into the CRI message, recording the pod's
// CPU sample for its usage rate.
func (s *Service) sandboxStats(sb *store.Sandbox, u podUsage) *runtimeapi.PodSandboxStats {
	cfg := sb.Config()
	linux := &runtimeapi.LinuxPodSandboxStats{}
	if sm := u.cgroup; sm != nil {
		rate, ok := s.usage.NanoCores("sandbox/"+sb.Meta.ID, *sm)
		linux.Cpu = cpuUsage(sm, rate, ok)
		linux.Memory = memoryUsage(sm)
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: sm.Time.UnixNano(), ProcessCount: u64(sm.Tasks)}
		linux.Io = ioUsage(sm)
	}
	if u.network != nil {
		linux.Network = networkUsage(u.network)
	}
	for i, c := range u.containers {
		linux.Containers = append(linux.Containers, s.containerStats(c, u.usage[i]))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          sb.Meta.ID,
			Metadata:    cfg.GetMetadata(),
			Labels:      cfg.GetLabels(),
			Annotations: cfg.GetAnnotations(),
		},
		Linux: linux,
	}
}

// defaultInterface is the pod's interface to the pod network, as CNI
// names it by default.
const defaultInterface = "eth0"

// networkUsage reports eth0 (or else the first interface) as the default
// interface and the others besides it.
func networkUsage(ns *stats.NetworkSample) *runtimeapi.NetworkUsage {
	out := &runtimeapi.NetworkUsage{Timestamp: ns.Time.UnixNano()}
	def := -1
	for i, iface := range ns.Interfaces {
		if iface.Name == defaultInterface {
			def = i
		}
	}
	if def < 0 && len(ns.Interfaces) > 0 {
		def = 0
	}
	for i, iface := range ns.Interfaces {
		v := &runtimeapi.NetworkInterfaceUsage{
			Name:     iface.Name,
			RxBytes:  u64(iface.RxBytes),
			RxErrors: u64(iface.RxErrors),
			TxBytes:  u64(iface.TxBytes),
			TxErrors: u64(iface.TxErrors),
		}
		if i == def {
			out.DefaultInterface = v
		} else {
			out.Interfaces = append(out.Interfaces, v)
		}
	}
	return out
}
