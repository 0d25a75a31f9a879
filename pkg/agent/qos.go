package agent

import (
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// qosClass is the pod's QoS class, as Kubernetes computes it: Guaranteed
// when every container limits CPU and memory and requests exactly that,
// BestEffort when none requests or limits either, Burstable otherwise.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	any, guaranteed := false, true
	for _, res := range qosRequirements(pod) {
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			req, hasReq := res.Requests[r]
			lim, hasLim := res.Limits[r]
			if (hasReq && !req.IsZero()) || (hasLim && !lim.IsZero()) {
				any = true
			}
			if !hasLim || lim.IsZero() || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// qosRequirements are what the QoS class is computed from: each
// container's resources or, where the pod sets its own (spec.resources),
// those alone (as kubelet does). A missing request counts as its limit.
func qosRequirements(pod *v1.Pod) []v1.ResourceRequirements {
	if pr := pod.Spec.Resources; pr != nil && (len(pr.Requests) > 0 || len(pr.Limits) > 0) {
		return []v1.ResourceRequirements{*pr}
	}
	var out []v1.ResourceRequirements
	for _, c := range allContainers(pod) {
		out = append(out, c.Resources)
	}
	return out
}

func allContainers(pod *v1.Pod) []v1.Container {
	return append(append([]v1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
}

// oomScoreAdj is kubelet's policy: Guaranteed pods are nearly never the OOM
// killer's choice, BestEffort ones first, Burstable ones in between by the
// share of the node's memory they request.
func oomScoreAdj(qos v1.PodQOSClass, c *v1.Container, memoryCapacity int64) int64 {
	switch qos {
	case v1.PodQOSGuaranteed:
		return -997
	case v1.PodQOSBestEffort:
		return 1000
	}
	req := c.Resources.Requests.Memory().Value()
	if memoryCapacity <= 0 {
		return 999
	}
	// Above Guaranteed's -997 + 1000 and below BestEffort's 1000, as kubelet.
	adj := 1000 - (1000*req)/memoryCapacity
	return min(max(adj, 3), 999)
}

// CFS settings kubelet derives from CPU requests and limits.
const (
	minShares   = 2
	maxShares   = 262144 // the most cgroup v1's cpu.shares takes
	quotaPeriod = 100000 // µs
	minQuota    = 1000
)

// milliCPUToShares is kubelet's conversion of a CPU request to
// cpu.shares, within what the kernel takes (a critical pod is admitted
// whatever it asks).
func milliCPUToShares(milli int64) int64 {
	return min(max(milli*1024/1000, minShares), maxShares)
}

// containerResources maps requests and limits to the CRI's Linux resources.
func containerResources(pod *v1.Pod, c *v1.Container, memoryCapacity int64) *runtimeapi.LinuxContainerResources {
	qos := qosClass(pod)
	r := &runtimeapi.LinuxContainerResources{OomScoreAdj: oomScoreAdj(qos, c, memoryCapacity)}
	cpuReq, cpuLim := c.Resources.Requests.Cpu(), c.Resources.Limits.Cpu()
	if !cpuReq.IsZero() {
		r.CpuShares = milliCPUToShares(cpuReq.MilliValue())
	} else if !cpuLim.IsZero() {
		r.CpuShares = milliCPUToShares(cpuLim.MilliValue())
	} else {
		r.CpuShares = minShares
	}
	if !cpuLim.IsZero() {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = max(cpuLim.MilliValue()*quotaPeriod/1000, minQuota)
	}
	if m := c.Resources.Limits.Memory(); !m.IsZero() {
		r.MemoryLimitInBytes = m.Value()
	}
	return r
}
