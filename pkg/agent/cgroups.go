package agent

import (
	"fmt"
	"path"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pod cgroups, as kubelet's cgroupfs QoS hierarchy: <root>/pod<uid> for
// Guaranteed pods, <root>/burstable/pod<uid> and <root>/besteffort/pod<uid>
// for the others. The agent creates a pod's cgroup with its pod-level
// limits before the sandbox (the runtime puts the sandbox and containers
// below it) and removes it after the sandbox. With the systemd driver the
// runtime makes the slices and pod-level limits are not set yet.

// podCgroupResources are the pod-level limits Kubernetes sets: CPU shares
// from the sum of CPU requests; CPU quota and memory limit only when every
// container has that limit (an init container runs alone, so the largest
// one counts if it is above the sum).
func podCgroupResources(pod *v1.Pod) *cgroups.Resources {
	r := &cgroups.Resources{SkipDevices: true}
	var cpuReq, cpuLim, memLim int64
	allCPU, allMem := true, true
	for _, c := range pod.Spec.Containers {
		cpuReq += c.Resources.Requests.Cpu().MilliValue()
		if l := c.Resources.Limits.Cpu(); l.IsZero() {
			allCPU = false
		} else {
			cpuLim += l.MilliValue()
		}
		if l := c.Resources.Limits.Memory(); l.IsZero() {
			allMem = false
		} else {
			memLim += l.Value()
		}
	}
	for _, c := range pod.Spec.InitContainers {
		cpuReq = max(cpuReq, c.Resources.Requests.Cpu().MilliValue())
		if l := c.Resources.Limits.Cpu(); l.IsZero() {
			allCPU = false
		} else {
			cpuLim = max(cpuLim, l.MilliValue())
		}
		if l := c.Resources.Limits.Memory(); l.IsZero() {
			allMem = false
		} else {
			memLim = max(memLim, l.Value())
		}
	}
	r.CpuShares = uint64(milliCPUToShares(cpuReq))
	if allCPU && cpuLim > 0 {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = max(cpuLim*quotaPeriod/1000, minQuota)
	}
	if allMem && memLim > 0 {
		r.Memory = memLim
	}
	return r
}

func (m *Manager) cgroupManager(p string, r *cgroups.Resources) (cgroups.Manager, error) {
	return manager.New(&cgroups.Cgroup{Path: p, Resources: r})
}

// ensureQoSCgroups creates the hierarchy's root and QoS levels; BestEffort
// pods get the smallest CPU share between them.
func (m *Manager) ensureQoSCgroups() error {
	if m.cfg.CgroupRoot == "" || m.cfg.SystemdCgroups {
		return nil
	}
	root := "/" + path.Clean(m.cfg.CgroupRoot)
	for _, level := range []struct {
		path string
		res  *cgroups.Resources
	}{
		{root, &cgroups.Resources{SkipDevices: true}},
		{root + "/burstable", &cgroups.Resources{SkipDevices: true}},
		{root + "/besteffort", &cgroups.Resources{SkipDevices: true, CpuShares: minShares}},
	} {
		mgr, err := m.cgroupManager(level.path, level.res)
		if err == nil {
			err = mgr.Apply(-1)
		}
		if err == nil {
			err = mgr.Set(level.res)
		}
		if err != nil {
			return fmt.Errorf("QoS cgroup %s: %w", level.path, err)
		}
	}
	return nil
}

// applyPodCgroup creates the pod's cgroup (or updates it) with its limits.
func (m *Manager) applyPodCgroup(pod *v1.Pod) error {
	p := m.cgroupParent(pod)
	if p == "" || m.cfg.SystemdCgroups {
		return nil
	}
	res := podCgroupResources(pod)
	mgr, err := m.cgroupManager(p, res)
	if err == nil {
		err = mgr.Apply(-1)
	}
	if err == nil {
		err = mgr.Set(res)
	}
	if err != nil {
		return fmt.Errorf("pod cgroup %s: %w", p, err)
	}
	return nil
}

// removePodCgroup removes the pod's cgroup wherever its QoS class put it
// (a pod torn down after a restart is known only by its UID).
func (m *Manager) removePodCgroup(uid types.UID) error {
	if m.cfg.CgroupRoot == "" || m.cfg.SystemdCgroups {
		return nil
	}
	root := "/" + path.Clean(m.cfg.CgroupRoot)
	for _, parent := range []string{root, root + "/burstable", root + "/besteffort"} {
		mgr, err := m.cgroupManager(parent+"/pod"+string(uid), &cgroups.Resources{SkipDevices: true})
		if err == nil {
			err = mgr.Destroy()
		}
		if err != nil {
			return fmt.Errorf("remove pod cgroup: %w", err)
		}
	}
	return nil
}
