package admission

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/berth-project/berth/pkg/eviction"
)

func pod(requests map[v1.ResourceName]string, init ...map[v1.ResourceName]string) *v1.Pod {
	list := func(m map[v1.ResourceName]string) v1.ResourceList {
		out := v1.ResourceList{}
		for k, v := range m {
			out[k] = resource.MustParse(v)
		}
		return out
	}
	p := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Resources: v1.ResourceRequirements{Requests: list(requests)}}}}}
	for _, r := range init {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Resources: v1.ResourceRequirements{Requests: list(r)}})
	}
	return p
}

func TestFit(t *testing.T) {
	node := v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi"),
		v1.ResourcePods: resource.MustParse("3"),
	}
	half := pod(map[v1.ResourceName]string{v1.ResourceCPU: "1", v1.ResourceMemory: "512Mi"})
	used := Add(Add(nil, half), pod(map[v1.ResourceName]string{v1.ResourceCPU: "500m"}))
	tests := []struct {
		name        string
		pod         *v1.Pod
		pods        int
		used        v1.ResourceList
		wantReason  string
		wantMessage string
	}{
		{"fits exactly", pod(map[v1.ResourceName]string{v1.ResourceCPU: "500m", v1.ResourceMemory: "512Mi"}), 2, used, "", ""},
		{"too much CPU", pod(map[v1.ResourceName]string{v1.ResourceCPU: "600m"}), 2, used,
			"OutOfcpu", "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000"},
		{"too much memory", pod(map[v1.ResourceName]string{v1.ResourceMemory: "513Mi"}), 2, used,
			"OutOfmemory", "Node didn't have enough resource: memory, requested: 537919488, used: 536870912, capacity: 1073741824"},
		{"an init container counts alone", pod(map[v1.ResourceName]string{v1.ResourceCPU: "100m"}, map[v1.ResourceName]string{v1.ResourceCPU: "1"}), 2, used,
			"OutOfcpu", "Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000"},
		{"best effort fits a full node", pod(nil), 2, Add(nil, pod(map[v1.ResourceName]string{v1.ResourceCPU: "2"})), "", ""},
		{"too many pods, checked first", pod(map[v1.ResourceName]string{v1.ResourceCPU: "100"}), 3, used,
			"OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"},
		{"pod-level requests count, not the containers'", func() *v1.Pod {
			p := pod(map[v1.ResourceName]string{v1.ResourceCPU: "100m"})
			p.Spec.Resources = &v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("700m")}}
			return p
		}(), 2, used, "OutOfcpu", "Node didn't have enough resource: cpu, requested: 700, used: 1500, capacity: 2000"},
		{"a resource the node does not report is not limited", pod(map[v1.ResourceName]string{v1.ResourceEphemeralStorage: "1Ei"}), 0, nil, "", ""},
	}
	for _, tt := range tests {
		reason, msg := Fit(tt.pod, tt.pods, tt.used, node)
		if reason != tt.wantReason || msg != tt.wantMessage {
			t.Errorf("%s: %q %q, want %q %q", tt.name, reason, msg, tt.wantReason, tt.wantMessage)
		}
	}
	if q := used[v1.ResourceCPU]; q.MilliValue() != 1500 {
		t.Errorf("Add changed what it was given: cpu %s", q.String())
	}
}

func TestAllocatable(t *testing.T) {
	capacity := v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"), "hugepages-2Mi": resource.MustParse("1Gi"),
	}
	hard, _, err := eviction.Settings{Hard: eviction.DefaultHard()}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	got := Allocatable(capacity, hard)
	mem, storage := got[v1.ResourceMemory], got[v1.ResourceEphemeralStorage]
	// kubelet's defaults: memory.available<100Mi, nodefs.available<10%.
	if mem.Value() != 4<<30-100<<20-1<<30 || storage.Value() != 90<<30 {
		t.Errorf("allocatable memory %d, storage %d", mem.Value(), storage.Value())
	}
	if q := capacity[v1.ResourceMemory]; q.Value() != 4<<30 {
		t.Error("Allocatable changed the capacity")
	}
}
