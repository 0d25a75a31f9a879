package agent

import (
	"fmt"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pod cgroups, as kubelet's QoS hierarchy: Guaranteed pods directly below
// the root, the others below its burstable and besteffort levels. With
// the cgroupfs driver these are directories (/kubepods/burstable/pod<uid>);
// with the systemd driver slices made through systemd's D-Bus API
// (kubepods-burstable-pod<uid>.slice below kubepods-burstable.slice below
// kubepods.slice), so that systemd, which owns the hierarchy on its hosts,
// knows every level and its limits. The agent creates a pod's cgroup with
// its pod-level limits before the sandbox (the runtime puts the sandbox
// and containers below it) and removes it after the sandbox.

// cgroupName is a cgroup of the pods' hierarchy as its path components
// below the root of the cgroup tree, whichever the driver.
type cgroupName []string

func (m *Manager) rootCgroup() cgroupName {
	var name cgroupName
	for _, part := range strings.Split(strings.TrimSuffix(m.cfg.CgroupRoot, ".slice"), "/") {
		if part != "" {
			name = append(name, part)
		}
	}
	return name
}

// qosCgroup is the level a pod of class qos goes below.
func (m *Manager) qosCgroup(qos v1.PodQOSClass) cgroupName {
	root := m.rootCgroup()
	if qos == v1.PodQOSGuaranteed {
		return root
	}
	return append(root, strings.ToLower(string(qos)))
}

func (m *Manager) podCgroup(qos v1.PodQOSClass, uid types.UID) cgroupName {
	return append(m.qosCgroup(qos), "pod"+string(uid))
}

// slice is the systemd unit of name: its components escaped (systemd
// reads "-" as nesting) and joined by "-", as kubelet names them.
func (name cgroupName) slice() string {
	if len(name) == 0 {
		return "-.slice"
	}
	parts := make([]string, len(name))
	for i, p := range name {
		parts[i] = strings.ReplaceAll(p, "-", "_")
	}
	return strings.Join(parts, "-") + ".slice"
}

// parentName is the name of the cgroup the runtime puts a pod's sandbox
// and containers below, in the driver's syntax.
func (m *Manager) parentName(name cgroupName) string {
	if m.cfg.SystemdCgroups {
		return name.slice()
	}
	return "/" + strings.Join(name, "/")
}

// cgroupDir is where name is in a cgroup hierarchy: systemd nests each
// slice's directory in its parent's.
func (m *Manager) cgroupDir(name cgroupName) string {
	if !m.cfg.SystemdCgroups {
		return "/" + strings.Join(name, "/")
	}
	dir := ""
	for i := range name {
		dir += "/" + name[:i+1].slice()
	}
	return dir
}

// cgroupParent is the pod's cgroup, as the sandbox's cgroup_parent.
func (m *Manager) cgroupParent(pod *v1.Pod) string {
	if len(m.rootCgroup()) == 0 {
		return ""
	}
	return m.parentName(m.podCgroup(qosClass(pod), pod.UID))
}

// cgroupConfig describes name with resources r to the cgroup manager:
// a path for cgroupfs, a slice and its parent slice for systemd.
func (m *Manager) cgroupConfig(name cgroupName, r *cgroups.Resources) *cgroups.Cgroup {
	if !m.cfg.SystemdCgroups {
		return &cgroups.Cgroup{Path: m.parentName(name), Resources: r}
	}
	return &cgroups.Cgroup{Systemd: true, Name: name.slice(), Parent: name[:len(name)-1].slice(), Resources: r}
}

// podCgroupResources are the pod-level limits Kubernetes sets: CPU shares
// from the sum of CPU requests; CPU quota and memory limit only when every
// container has that limit (an init container runs alone, so the largest
// one counts if it is above the sum). The pod's own resources
// (spec.resources), where given, take the place of those sums.
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
	if pr := pod.Spec.Resources; pr != nil { // pod-level resources set the pod's cgroup
		if q, ok := pr.Requests[v1.ResourceCPU]; ok {
			cpuReq = q.MilliValue()
		}
		if l := pr.Limits.Cpu(); !l.IsZero() {
			cpuLim, allCPU = l.MilliValue(), true
		}
		if l := pr.Limits.Memory(); !l.IsZero() {
			memLim, allMem = l.Value(), true
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

// applyCgroup creates the cgroup name (or updates it) with limits r.
func (m *Manager) applyCgroup(name cgroupName, r *cgroups.Resources) error {
	if cgroups.IsCgroup2UnifiedMode() && r.CpuShares != 0 {
		// v2 has weights, not shares; the cgroup managers leave the
		// conversion to their callers (runc makes it for containers).
		r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(r.CpuShares)
	}
	if r.PidsLimit == nil {
		r.PidsLimit = &unlimitedPids // else systemd's DefaultTasksMax for a slice
	}
	mgr, err := manager.New(m.cgroupConfig(name, r))
	if err == nil {
		err = mgr.Apply(-1)
	}
	if err == nil {
		err = mgr.Set(r)
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", m.parentName(name), err)
	}
	return nil
}

var unlimitedPids int64 = -1

// ensureQoSCgroups creates the hierarchy's root and QoS levels; BestEffort
// pods get the smallest CPU share between them.
func (m *Manager) ensureQoSCgroups() error {
	root := m.rootCgroup()
	if len(root) == 0 {
		return nil
	}
	levels := []struct {
		name cgroupName
		res  *cgroups.Resources
	}{
		{root, &cgroups.Resources{SkipDevices: true}},
		{m.qosCgroup(v1.PodQOSBurstable), &cgroups.Resources{SkipDevices: true}},
		{m.qosCgroup(v1.PodQOSBestEffort), &cgroups.Resources{SkipDevices: true, CpuShares: minShares}},
	}
	for _, level := range levels {
		if err := m.applyCgroup(level.name, level.res); err != nil {
			return fmt.Errorf("QoS %w", err)
		}
	}
	return nil
}

// applyPodCgroup creates the pod's cgroup (or updates it) with its limits.
func (m *Manager) applyPodCgroup(pod *v1.Pod) error {
	if len(m.rootCgroup()) == 0 {
		return nil
	}
	r := podCgroupResources(pod)
	r.HugetlbLimit = podHugePageLimits(pod, m.hugePageSizes)
	if err := m.applyCgroup(m.podCgroup(qosClass(pod), pod.UID), r); err != nil {
		return fmt.Errorf("pod %w", err)
	}
	return nil
}

// removePodCgroup removes the pod's cgroup wherever its QoS class put it
// (a pod torn down after a restart is known only by its UID).
func (m *Manager) removePodCgroup(uid types.UID) error {
	if len(m.rootCgroup()) == 0 {
		return nil
	}
	for _, qos := range []v1.PodQOSClass{v1.PodQOSGuaranteed, v1.PodQOSBurstable, v1.PodQOSBestEffort} {
		mgr, err := manager.New(m.cgroupConfig(m.podCgroup(qos, uid), &cgroups.Resources{SkipDevices: true}))
		if err == nil {
			err = mgr.Destroy()
		}
		if err != nil {
			return fmt.Errorf("remove pod cgroup: %w", err)
		}
	}
	return nil
}
