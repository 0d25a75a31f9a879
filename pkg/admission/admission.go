// Package admission decides whether the node can run one more pod next to
// those it runs, as kubelet's admission does before a pod's first
// container: the pod's requests against the node's allocatable, and the
// node's pod count against maxPods. It is pure; callers measure the node
// (Capacity) and say what already runs.
package admission

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-project/berth/pkg/eviction"
)

// Resources are the ones a pod's requests are checked on, in the order
// kubelet reports the first that does not fit.
var Resources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage}

// Requests is what pod asks the node for: for each resource, the larger
// of its app containers' sum and its largest init container, plus the
// pod's overhead, as the scheduler counts.
func Requests(pod *v1.Pod) v1.ResourceList {
	out := v1.ResourceList{}
	for _, r := range Resources {
		var sum resource.Quantity
		for _, c := range pod.Spec.Containers {
			if q, ok := c.Resources.Requests[r]; ok {
				sum.Add(q)
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if q, ok := c.Resources.Requests[r]; ok && q.Cmp(sum) > 0 {
				sum = q.DeepCopy()
			}
		}
		if pod.Spec.Resources != nil { // pod-level resources: what the pod asks as a whole
			if q, ok := pod.Spec.Resources.Requests[r]; ok {
				sum = q.DeepCopy()
			}
		}
		if q, ok := pod.Spec.Overhead[r]; ok {
			sum.Add(q)
		}
		out[r] = sum
	}
	return out
}

// Add returns used with pod's requests added; used is not changed.
func Add(used v1.ResourceList, pod *v1.Pod) v1.ResourceList {
	out := used.DeepCopy()
	if out == nil {
		out = v1.ResourceList{}
	}
	for r, q := range Requests(pod) {
		sum := out[r]
		sum.Add(q)
		out[r] = sum
	}
	return out
}

// Fit says why a node with allocatable, running pods pods that ask for
// used, cannot also run pod: kubelet's reason (OutOfpods, OutOfcpu,
// OutOfmemory, OutOfephemeral-storage) and message. Both are "" if it
// fits. As the scheduler, only what the pod asks for is checked; a
// resource the node does not report is not limited.
func Fit(pod *v1.Pod, pods int, used, allocatable v1.ResourceList) (reason, message string) {
	if most, ok := allocatable[v1.ResourcePods]; ok && int64(pods) >= most.Value() {
		return "OutOfpods", insufficient(v1.ResourcePods, 1, int64(pods), most.Value())
	}
	reqs := Requests(pod)
	for _, r := range Resources {
		req, have := reqs[r], allocatable[r]
		_, ok := allocatable[r]
		if !ok || req.IsZero() {
			continue
		}
		u := used[r]
		want := u.DeepCopy()
		want.Add(req)
		if want.Cmp(have) > 0 {
			return "OutOf" + string(r), insufficient(r, amount(r, req), amount(r, u), amount(r, have))
		}
	}
	return "", ""
}

// insufficient is kubelet's wording, capacity being the allocatable.
func insufficient(r v1.ResourceName, requested, used, capacity int64) string {
	return fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", r, requested, used, capacity)
}

// amount is a quantity as kubelet's message counts it: CPU in millicores,
// the rest in units.
func amount(r v1.ResourceName, q resource.Quantity) int64 {
	if r == v1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// Allocatable is capacity less what pods may not have, as kubelet
// computes it: huge pages come out of memory, and the hard eviction
// thresholds on memory.available and nodefs.available are held back, so
// that pods fitting the allocatable do not push the node into eviction.
func Allocatable(capacity v1.ResourceList, hard []eviction.Threshold) v1.ResourceList {
	reserved := func(s eviction.Signal, capacity int64) int64 {
		for _, t := range hard {
			if t.Signal == s && t.Hard {
				return t.Limit(capacity)
			}
		}
		return 0
	}
	out := capacity.DeepCopy()
	var huge int64
	for name, q := range capacity {
		if isHugePages(name) {
			huge += q.Value()
		}
	}
	if q, ok := capacity[v1.ResourceMemory]; ok {
		mem := q.Value()
		out[v1.ResourceMemory] = *resource.NewQuantity(max(mem-reserved(eviction.MemoryAvailable, mem)-huge, 0), resource.BinarySI)
	}
	if q, ok := capacity[v1.ResourceEphemeralStorage]; ok {
		storage := q.Value()
		out[v1.ResourceEphemeralStorage] = *resource.NewQuantity(max(storage-reserved(eviction.NodeFsAvailable, storage), 0), resource.BinarySI)
	}
	return out
}

func isHugePages(name v1.ResourceName) bool {
	return strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix)
}
