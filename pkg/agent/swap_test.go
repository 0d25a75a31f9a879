package agent

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestSwapLimit(t *testing.T) {
	const gi = 1 << 30
	res := func(req, lim string) v1.ResourceRequirements {
		r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
		if req != "" {
			r.Requests[v1.ResourceMemory] = resource.MustParse(req)
		}
		if lim != "" {
			r.Limits[v1.ResourceMemory] = resource.MustParse(lim)
		}
		return r
	}
	pod := func(rs ...v1.ResourceRequirements) *v1.Pod {
		p := &v1.Pod{}
		for _, r := range rs {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Resources: r})
		}
		return p
	}
	critical := pod(res("1Gi", "2Gi"))
	critical.Spec.PriorityClassName = "system-node-critical"
	guaranteed := pod(res("1Gi", "1Gi"))
	guaranteed.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = resource.MustParse("1")
	guaranteed.Spec.Containers[0].Resources.Limits[v1.ResourceCPU] = resource.MustParse("1")
	for _, tc := range []struct {
		name     string
		behavior string
		pod      *v1.Pod
		want     int64
	}{
		{"NoSwap", "NoSwap", pod(res("1Gi", "2Gi")), 0},
		{"unset is NoSwap", "", pod(res("1Gi", "2Gi")), 0},
		// 1 of the node's 8 GiB of memory: an eighth of its 4 GiB of swap.
		{"burstable", "LimitedSwap", pod(res("1Gi", "2Gi")), gi / 2},
		{"burstable without a limit", "LimitedSwap", pod(res("1Gi", "")), gi / 2},
		{"request equal to limit", "LimitedSwap", pod(res("1Gi", "1Gi"), res("", "")), 0},
		{"no memory asked", "LimitedSwap", pod(res("", ""), res("1Gi", "")), 0},
		{"guaranteed", "LimitedSwap", guaranteed, 0},
		{"best effort", "LimitedSwap", pod(res("", "")), 0},
		{"critical", "LimitedSwap", critical, 0},
	} {
		if got := swapLimit(tc.behavior, tc.pod, &tc.pod.Spec.Containers[0], 8*gi, 4*gi); got != tc.want {
			t.Errorf("%s: swap limit %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := swapLimit("LimitedSwap", pod(res("1Gi", "2Gi")), &pod(res("1Gi", "2Gi")).Spec.Containers[0], 8*gi, 0); got != 0 {
		t.Errorf("a node without swap: limit %d, want 0", got)
	}
}
