package agent

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func resources(req, lim map[v1.ResourceName]string) v1.ResourceRequirements {
	conv := func(m map[v1.ResourceName]string) v1.ResourceList {
		if m == nil {
			return nil
		}
		out := v1.ResourceList{}
		for k, v := range m {
			out[k] = resource.MustParse(v)
		}
		return out
	}
	return v1.ResourceRequirements{Requests: conv(req), Limits: conv(lim)}
}

func podWith(rs ...v1.ResourceRequirements) *v1.Pod {
	p := &v1.Pod{}
	for _, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "c", Resources: r})
	}
	return p
}

func TestQOSClassAndResources(t *testing.T) {
	full := map[v1.ResourceName]string{v1.ResourceCPU: "500m", v1.ResourceMemory: "128Mi"}
	tests := []struct {
		name string
		pod  *v1.Pod
		want v1.PodQOSClass
	}{
		{"nothing", podWith(v1.ResourceRequirements{}), v1.PodQOSBestEffort},
		{"limits equal requests", podWith(resources(full, full)), v1.PodQOSGuaranteed},
		{"limits only (requests default to them)", podWith(resources(nil, full)), v1.PodQOSGuaranteed},
		{"requests below limits", podWith(resources(map[v1.ResourceName]string{v1.ResourceCPU: "100m", v1.ResourceMemory: "128Mi"}, full)), v1.PodQOSBurstable},
		{"one container without limits", podWith(resources(full, full), v1.ResourceRequirements{}), v1.PodQOSBurstable},
		{"memory only", podWith(resources(nil, map[v1.ResourceName]string{v1.ResourceMemory: "1Gi"})), v1.PodQOSBurstable},
	}
	for _, tt := range tests {
		if got := qosClass(tt.pod); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}

	g := podWith(resources(full, full))
	r := containerResources(g, &g.Spec.Containers[0], 1<<30)
	if r.CpuShares != 512 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 128<<20 || r.OomScoreAdj != -997 {
		t.Errorf("guaranteed: %+v", r)
	}
	b := podWith(resources(map[v1.ResourceName]string{v1.ResourceMemory: "256Mi"}, nil))
	r = containerResources(b, &b.Spec.Containers[0], 1<<30)
	if r.CpuShares != 2 || r.CpuQuota != 0 || r.MemoryLimitInBytes != 0 || r.OomScoreAdj != 750 {
		t.Errorf("burstable: %+v", r)
	}
	huge := podWith(resources(map[v1.ResourceName]string{v1.ResourceMemory: "2Gi"}, nil))
	if r := containerResources(huge, &huge.Spec.Containers[0], 1<<30); r.OomScoreAdj != 3 {
		t.Errorf("burstable requesting all memory: oom_score_adj %d, want 3 (just above Guaranteed)", r.OomScoreAdj)
	}
	big := podWith(resources(map[v1.ResourceName]string{v1.ResourceCPU: "1000"}, nil))
	if r := containerResources(big, &big.Spec.Containers[0], 1<<30); r.CpuShares != 262144 {
		t.Errorf("1000 CPUs requested: cpu shares %d, want the kernel's most, 262144", r.CpuShares)
	}
	if r := podCgroupResources(big); r.CpuShares != 262144 {
		t.Errorf("1000 CPUs requested: the pod cgroup's cpu shares %d, want 262144", r.CpuShares)
	}
	e := podWith(v1.ResourceRequirements{})
	if r := containerResources(e, &e.Spec.Containers[0], 1<<30); r.OomScoreAdj != 1000 {
		t.Errorf("best effort oom_score_adj %d", r.OomScoreAdj)
	}
}

func TestCgroupParent(t *testing.T) {
	p := podWith(v1.ResourceRequirements{})
	p.UID = "1234-ab"
	m := &Manager{cfg: Config{CgroupRoot: "kubepods"}}
	if got := m.cgroupParent(p); got != "/kubepods/besteffort/pod1234-ab" {
		t.Errorf("cgroupfs: %s", got)
	}
	m.cfg.SystemdCgroups = true
	if got := m.cgroupParent(p); got != "kubepods-besteffort-pod1234_ab.slice" {
		t.Errorf("systemd: %s", got)
	}
	full := map[v1.ResourceName]string{v1.ResourceCPU: "1", v1.ResourceMemory: "1Gi"}
	g := podWith(resources(full, full))
	g.UID = "u1"
	m.cfg.SystemdCgroups = false
	if got := m.cgroupParent(g); got != "/kubepods/podu1" {
		t.Errorf("guaranteed: %s", got)
	}
}
