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

func withPodResources(p *v1.Pod, r v1.ResourceRequirements) *v1.Pod {
	p.Spec.Resources = &r
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
		{"pod-level limits over containers without", withPodResources(podWith(v1.ResourceRequirements{}), resources(nil, full)), v1.PodQOSGuaranteed},
		{"pod-level requests only", withPodResources(podWith(resources(full, full)),
			resources(map[v1.ResourceName]string{v1.ResourceMemory: "64Mi"}, nil)), v1.PodQOSBurstable},
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
	pl := withPodResources(podWith(resources(nil, full), v1.ResourceRequirements{}),
		resources(map[v1.ResourceName]string{v1.ResourceCPU: "250m"}, map[v1.ResourceName]string{v1.ResourceCPU: "1", v1.ResourceMemory: "24Mi"}))
	if r := podCgroupResources(pl); r.CpuShares != 256 || r.CpuQuota != 100000 || r.Memory != 24<<20 {
		t.Errorf("pod-level resources: the pod cgroup's shares %d, quota %d, memory %d; want 256, 100000, 24 MiB", r.CpuShares, r.CpuQuota, r.Memory)
	}
	e := podWith(v1.ResourceRequirements{})
	if r := containerResources(e, &e.Spec.Containers[0], 1<<30); r.OomScoreAdj != 1000 {
		t.Errorf("best effort oom_score_adj %d", r.OomScoreAdj)
	}
}

// TestCgroupNames: where each driver puts a pod, as kubelet names it.
func TestCgroupNames(t *testing.T) {
	besteffort := podWith(v1.ResourceRequirements{})
	besteffort.UID = "1234-ab"
	full := map[v1.ResourceName]string{v1.ResourceCPU: "1", v1.ResourceMemory: "1Gi"}
	guaranteed := podWith(resources(full, full))
	guaranteed.UID = "u1"
	for _, tc := range []struct {
		root    string
		systemd bool
		pod     *v1.Pod
		parent  string // the sandbox's cgroup_parent
		dir     string // the pod cgroup's directory in the hierarchy
		unit    string // systemd: the pod's slice and its parent
		in      string
	}{
		{"kubepods", false, besteffort, "/kubepods/besteffort/pod1234-ab", "/kubepods/besteffort/pod1234-ab", "", ""},
		{"kubepods", false, guaranteed, "/kubepods/podu1", "/kubepods/podu1", "", ""},
		{"a/kubepods", false, guaranteed, "/a/kubepods/podu1", "/a/kubepods/podu1", "", ""},
		{"kubepods", true, besteffort, "kubepods-besteffort-pod1234_ab.slice",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_ab.slice",
			"kubepods-besteffort-pod1234_ab.slice", "kubepods-besteffort.slice"},
		{"kubepods.slice", true, guaranteed, "kubepods-podu1.slice", "/kubepods.slice/kubepods-podu1.slice",
			"kubepods-podu1.slice", "kubepods.slice"},
		{"a-b/kubepods", true, guaranteed, "a_b-kubepods-podu1.slice", "/a_b.slice/a_b-kubepods.slice/a_b-kubepods-podu1.slice",
			"a_b-kubepods-podu1.slice", "a_b-kubepods.slice"},
	} {
		m := &Manager{cfg: Config{CgroupRoot: tc.root, SystemdCgroups: tc.systemd}}
		name := m.podCgroup(qosClass(tc.pod), tc.pod.UID)
		if got := m.cgroupParent(tc.pod); got != tc.parent {
			t.Errorf("root %q systemd %v: cgroup_parent %s, want %s", tc.root, tc.systemd, got, tc.parent)
		}
		if got := m.cgroupDir(name); got != tc.dir {
			t.Errorf("root %q systemd %v: directory %s, want %s", tc.root, tc.systemd, got, tc.dir)
		}
		c := m.cgroupConfig(name, nil)
		if tc.systemd && (!c.Systemd || c.Name != tc.unit || c.Parent != tc.in) {
			t.Errorf("root %q: unit %s in %s, want %s in %s", tc.root, c.Name, c.Parent, tc.unit, tc.in)
		}
		if !tc.systemd && (c.Systemd || c.Path != tc.dir) {
			t.Errorf("root %q: cgroupfs config %+v, want path %s", tc.root, c, tc.dir)
		}
	}
	root := &Manager{cfg: Config{CgroupRoot: "kubepods", SystemdCgroups: true}}
	if c := root.cgroupConfig(root.rootCgroup(), nil); c.Name != "kubepods.slice" || c.Parent != "-.slice" {
		t.Errorf("the root slice: %s in %s, want kubepods.slice in -.slice", c.Name, c.Parent)
	}
	if got := (&Manager{}).cgroupParent(guaranteed); got != "" {
		t.Errorf("no cgroup root: cgroup_parent %q, want the runtime's default", got)
	}
}
