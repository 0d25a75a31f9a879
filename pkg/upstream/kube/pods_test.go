package kube

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func apiPod(name string, age int, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("u-" + name),
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second)), ResourceVersion: "7"},
		Spec:   v1.PodSpec{NodeName: "n1", Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
		Status: v1.PodStatus{Phase: v1.PodPending},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func requests(cpu string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}
	}
}

func hostPort(port int32) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: port}} }
}

func phase(ph v1.PodPhase) func(*v1.Pod) { return func(p *v1.Pod) { p.Status.Phase = ph } }

func TestAdmit(t *testing.T) {
	p := newWithClient(Config{NodeName: "n1"}, nil)
	p.allocatable = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi"),
		v1.ResourceEphemeralStorage: resource.MustParse("10Gi")}
	p.doneUIDs["u-deleted-done"] = true
	now := metav1.NewTime(t0.Time)
	pods := []*v1.Pod{
		apiPod("late-big", 9, requests("1500m")), // created after "big": no room left
		apiPod("big", 1, requests("1500m")),
		apiPod("running-big", 2, requests("1"), phase(v1.PodRunning)), // admitted before a restart: keeps its place
		apiPod("done", 3, phase(v1.PodSucceeded)),
		apiPod("web", 4, hostPort(8080)),
		apiPod("web2", 5, hostPort(8080)),
		apiPod("pvc", 6, func(p *v1.Pod) {
			p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "d"}}}}
		}),
		apiPod("gvisor", 7, func(p *v1.Pod) { rc := "gvisor"; p.Spec.RuntimeClassName = &rc }),
		apiPod("deleted-done", 8, func(p *v1.Pod) { p.DeletionTimestamp = &now }),
		apiPod("deleting", 8, func(p *v1.Pod) { p.DeletionTimestamp = &now }, phase(v1.PodRunning)),
	}
	desired, rejects := p.admit(pods)
	var names []string
	for _, d := range desired {
		names = append(names, d.Name)
		if d.Annotations["kubernetes.io/config.source"] != "api" || d.ResourceVersion != "" || d.Status.Phase != "" {
			t.Errorf("%s: annotations %v, resourceVersion %q, phase %q", d.Name, d.Annotations, d.ResourceVersion, d.Status.Phase)
		}
	}
	if got := strings.Join(names, ","); got != "big,running-big,web,deleting" {
		t.Errorf("desired %s", got)
	}
	want := map[string]string{
		"late-big": "OutOfcpu: Node didn't have enough resource: cpu, requested: 1500, used: 2500, capacity: 2000",
		"web2":     "NodePorts: node n1 didn't have free ports for the requested pod ports: TCP/:8080 is used by pod ns/web",
		"pvc":      `UnsupportedVolume: volume "data": its source is not supported by berth yet`,
		"gvisor":   `UnsupportedRuntimeClass: runtime class "gvisor" is not available on node n1`,
	}
	if len(rejects) != len(want) {
		t.Errorf("%d rejections, want %d: %+v", len(rejects), len(want), rejects)
	}
	for _, r := range rejects {
		if got := r.reason + ": " + r.message; !strings.HasPrefix(got, want[r.pod.Name]) || want[r.pod.Name] == "" {
			t.Errorf("%s rejected with %q, want %q", r.pod.Name, got, want[r.pod.Name])
		}
	}
	if pods[0].ResourceVersion != "7" {
		t.Error("admit changed the informer's objects")
	}

	// maxPods counts the static pods and the pods admitted before.
	p.allocatable[v1.ResourcePods] = resource.MustParse("3")
	p.StaticPods([]*v1.Pod{apiPod("static", 0)})
	_, rejects = p.admit([]*v1.Pod{apiPod("a", 1), apiPod("b", 2, phase(v1.PodRunning)), apiPod("c", 3)})
	if len(rejects) != 1 || rejects[0].pod.Name != "c" || rejects[0].reason != "OutOfpods" ||
		rejects[0].message != "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3" {
		t.Errorf("with maxPods 3 and a static pod: rejects %+v, want c refused OutOfpods", rejects)
	}

	// The static pods' requests are used too.
	delete(p.allocatable, v1.ResourcePods)
	p.StaticPods([]*v1.Pod{apiPod("static", 0, requests("1500m"))})
	_, rejects = p.admit([]*v1.Pod{apiPod("d", 1, requests("1"))})
	if len(rejects) != 1 || rejects[0].reason != "OutOfcpu" {
		t.Errorf("next to a static pod asking 1.5 of 2 CPUs, a pod asking 1: rejects %+v, want OutOfcpu", rejects)
	}
}

func TestAdmitUnderPressure(t *testing.T) {
	var memory, disk bool
	p := newWithClient(Config{NodeName: "n1", Pressure: func() (bool, bool) { return memory, disk }}, nil)
	p.allocatable = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("1Gi")}
	critical := func(p *v1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }
	tolerates := func(p *v1.Pod) {
		p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeMemoryPressure, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
	}
	pods := func() []*v1.Pod {
		return []*v1.Pod{
			apiPod("besteffort", 1), apiPod("burstable", 2, requests("100m")), apiPod("critical", 3, critical),
			apiPod("tolerating", 4, tolerates), apiPod("running", 5, phase(v1.PodRunning)),
		}
	}
	names := func(desired []*v1.Pod, rejects []rejection) (string, string) {
		var d, r []string
		for _, p := range desired {
			d = append(d, p.Name)
		}
		for _, x := range rejects {
			r = append(r, x.pod.Name+"="+x.reason+": "+x.message)
		}
		return strings.Join(d, ","), strings.Join(r, ";")
	}
	memory = true
	d, r := names(p.admit(pods()))
	if d != "burstable,critical,tolerating,running" || r != "besteffort=Evicted: The node had condition: [MemoryPressure]. " {
		t.Errorf("memory pressure: admitted %s, refused %s", d, r)
	}
	memory, disk = false, true
	d, r = names(p.admit(pods()))
	if d != "critical,running" || !strings.Contains(r, "burstable=Evicted: The node had condition: [DiskPressure]. ") {
		t.Errorf("disk pressure: admitted %s, refused %s", d, r)
	}
}

func TestMergeStatus(t *testing.T) {
	api := v1.PodStatus{Phase: v1.PodPending, NominatedNodeName: "n1", Conditions: []v1.PodCondition{
		{Type: v1.PodScheduled, Status: v1.ConditionTrue},
		{Type: v1.PodReady, Status: v1.ConditionFalse},
		{Type: "example.com/gate", Status: v1.ConditionTrue},
	}}
	agent := v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.5", StartTime: &metav1.Time{Time: t0.Add(123 * time.Millisecond)},
		Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}, {Type: v1.ContainersReady, Status: v1.ConditionTrue}}}
	st := mergeStatus(api, agent)
	var types []string
	for _, c := range st.Conditions {
		types = append(types, string(c.Type)+"="+string(c.Status))
	}
	if got := strings.Join(types, ","); got != "ContainersReady=True,PodScheduled=True,Ready=True,example.com/gate=True" {
		t.Errorf("conditions %s", got)
	}
	if st.Phase != v1.PodRunning || st.PodIP != "10.0.0.5" || st.NominatedNodeName != "n1" || !st.StartTime.Equal(&t0) {
		t.Errorf("status %+v", st)
	}
	// A pod the API has as finished stays finished.
	api.Phase = v1.PodFailed
	if st := mergeStatus(api, agent); st.Phase != v1.PodFailed {
		t.Errorf("phase %s after Failed", st.Phase)
	}
}
