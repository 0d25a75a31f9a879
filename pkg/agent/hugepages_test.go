package agent

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestHugePages(t *testing.T) {
	for name, want := range map[v1.ResourceName]string{
		"hugepages-2Mi": "2MB", "hugepages-1Gi": "1GB", "hugepages-64Ki": "64KB",
		"hugepages-x": "", "memory": "", "hugepages-0": "",
	} {
		if got := hugePageSize(name); got != want {
			t.Errorf("hugePageSize(%s) = %q, want %q", name, got, want)
		}
	}
	sizes := []string{"2MB", "1GB"}
	lim := func(c string) v1.ResourceList {
		return v1.ResourceList{"hugepages-2Mi": resource.MustParse(c), v1.ResourceMemory: resource.MustParse("64Mi")}
	}
	got := hugePageLimits(lim("4Mi"), sizes)
	if len(got) != 2 || got[0].PageSize != "2MB" || got[0].Limit != 4<<20 || got[1].PageSize != "1GB" || got[1].Limit != 0 {
		t.Errorf("hugePageLimits = %v, want 2MB at 4Mi and 1GB at 0", got)
	}
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{{Resources: v1.ResourceRequirements{Limits: lim("10Mi")}}},
		Containers: []v1.Container{
			{Resources: v1.ResourceRequirements{Limits: lim("4Mi")}},
			{Resources: v1.ResourceRequirements{Limits: lim("2Mi")}},
			{},
		},
	}}
	if p := podHugePageLimits(pod, sizes); p[0].Limit != 10<<20 || p[1].Limit != 0 {
		t.Errorf("pod limits %+v %+v, want the init container's 10Mi of 2MB and no 1GB", p[0], p[1])
	}
	pod.Spec.InitContainers = nil
	if p := podHugePageLimits(pod, sizes); p[0].Limit != 6<<20 {
		t.Errorf("pod limit of 2MB %d, want the containers' 6Mi", p[0].Limit)
	}
}
