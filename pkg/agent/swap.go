package agent

import (
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/eviction"
)

// swapLimit is how much swap a container may use on cgroup v2, as
// kubelet's memorySwap.swapBehavior decides it. NoSwap (the default):
// none. LimitedSwap: a container of a Burstable pod that asks for memory
// (a request below its limit, or no limit) may swap its request's share
// of the node's memory, times the node's swap; any other container —
// Guaranteed, BestEffort, critical, or with nothing asked — none.
func swapLimit(behavior string, pod *v1.Pod, c *v1.Container, nodeMemory, nodeSwap int64) int64 {
	if behavior != "LimitedSwap" || nodeMemory <= 0 || nodeSwap <= 0 ||
		qosClass(pod) != v1.PodQOSBurstable || eviction.Critical(pod) {
		return 0
	}
	req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	if req.IsZero() || (!lim.IsZero() && req.Cmp(*lim) == 0) {
		return 0
	}
	return int64(float64(req.Value()) / float64(nodeMemory) * float64(nodeSwap))
}

// swapSetting is the unified cgroup setting that holds a container to its
// swap limit.
func swapSetting(limit int64) map[string]string {
	return map[string]string{"memory.swap.max": strconv.FormatInt(limit, 10)}
}
