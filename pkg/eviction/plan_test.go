package eviction

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

const mi = 1 << 20

func TestDecide(t *testing.T) {
	hardMem := Threshold{Signal: MemoryAvailable, Quantity: 100 * mi, Hard: true}
	hardDisk := Threshold{Signal: NodeFsAvailable, Percent: 10, Hard: true}
	softDisk := Threshold{Signal: ImageFsAvailable, Percent: 20, GracePeriod: time.Minute}
	low := map[Signal]reading{
		MemoryAvailable:  {available: 50 * mi, capacity: 1000 * mi},
		NodeFsAvailable:  {available: 5, capacity: 100},
		ImageFsAvailable: {available: 15, capacity: 100},
	}
	fine := map[Signal]reading{
		MemoryAvailable:  {available: 500 * mi, capacity: 1000 * mi},
		NodeFsAvailable:  {available: 50, capacity: 100},
		ImageFsAvailable: {available: 50, capacity: 100},
	}
	for _, tc := range []struct {
		name             string
		ths              []Threshold
		readings         map[Signal]reading
		prev             state
		now              time.Time
		act              Signal
		memory, disk     bool
		softSinceWantSet bool
	}{
		{name: "nothing met", ths: []Threshold{hardMem, hardDisk}, readings: fine, now: t0},
		{name: "memory before disk", ths: []Threshold{hardDisk, hardMem}, readings: low, now: t0, act: MemoryAvailable, memory: true, disk: true},
		{name: "hard disk", ths: []Threshold{hardDisk}, readings: low, now: t0, act: NodeFsAvailable, disk: true},
		{name: "exactly at the threshold is not met", ths: []Threshold{hardDisk},
			readings: map[Signal]reading{NodeFsAvailable: {available: 10, capacity: 100}}, now: t0},
		{name: "soft within its grace: pressure, no action", ths: []Threshold{softDisk}, readings: low, now: t0, disk: true, softSinceWantSet: true},
		{name: "soft past its grace", ths: []Threshold{softDisk}, readings: low,
			prev: state{softSince: map[Signal]time.Time{ImageFsAvailable: t0.Add(-time.Minute)}}, now: t0, act: ImageFsAvailable, disk: true, softSinceWantSet: true},
		{name: "hard before soft", ths: []Threshold{softDisk, hardDisk}, readings: low,
			prev: state{softSince: map[Signal]time.Time{ImageFsAvailable: t0.Add(-time.Hour)}}, now: t0, act: NodeFsAvailable, disk: true, softSinceWantSet: true},
		{name: "pressure holds for the transition period", ths: []Threshold{hardDisk}, readings: fine,
			prev: state{lastMet: map[bool]time.Time{true: t0.Add(-4 * time.Minute)}}, now: t0, disk: true},
		{name: "pressure ends after the transition period", ths: []Threshold{hardDisk}, readings: fine,
			prev: state{lastMet: map[bool]time.Time{true: t0.Add(-5 * time.Minute)}}, now: t0},
		{name: "a signal not measured is not met", ths: []Threshold{{Signal: ImageFsInodesFree, Percent: 5, Hard: true}}, readings: low, now: t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.ths, tc.readings, tc.prev, tc.now, 5*time.Minute)
			var act Signal
			if d.act != nil {
				act = d.act.Signal
			}
			if act != tc.act || d.memoryPressure != tc.memory || d.diskPressure != tc.disk {
				t.Errorf("act %q memory %v disk %v; want %q %v %v", act, d.memoryPressure, d.diskPressure, tc.act, tc.memory, tc.disk)
			}
			if _, ok := d.next.softSince[ImageFsAvailable]; ok != tc.softSinceWantSet {
				t.Errorf("soft threshold's start kept: %v, want %v", ok, tc.softSinceWantSet)
			}
			if since, ok := tc.prev.softSince[ImageFsAvailable]; ok && tc.softSinceWantSet && !d.next.softSince[ImageFsAvailable].Equal(since) {
				t.Errorf("soft threshold's start moved from %v to %v", since, d.next.softSince[ImageFsAvailable])
			}
		})
	}
}

func TestSoftThresholdRestartsWhenRelieved(t *testing.T) {
	soft := []Threshold{{Signal: MemoryAvailable, Quantity: 100 * mi, GracePeriod: time.Minute}}
	low := map[Signal]reading{MemoryAvailable: {available: 50 * mi, capacity: 1000 * mi}}
	ok := map[Signal]reading{MemoryAvailable: {available: 500 * mi, capacity: 1000 * mi}}
	d := decide(soft, low, state{}, t0, time.Minute)
	d = decide(soft, ok, d.next, t0.Add(50*time.Second), time.Minute)
	d = decide(soft, low, d.next, t0.Add(70*time.Second), time.Minute)
	if d.act != nil {
		t.Error("a soft threshold met twice for less than its grace period each acted")
	}
	if d = decide(soft, low, d.next, t0.Add(130*time.Second), time.Minute); d.act == nil {
		t.Error("a soft threshold met for its whole grace period did not act")
	}
}

func TestMetWithReclaim(t *testing.T) {
	th := Threshold{Signal: NodeFsAvailable, Percent: 10, MinReclaimPercent: 5}
	r := reading{available: 12, capacity: 100}
	if met(th, r, false) || !met(th, r, true) {
		t.Error("12 of 100 against 10 % + 5 %: want not met, but short of the reclaim")
	}
}

func pod(name string, prio int32, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:   v1.PodSpec{Priority: &prio, Containers: []v1.Container{{Name: "c"}}},
		Status: v1.PodStatus{Phase: v1.PodRunning}}
	for _, f := range mutate {
		f(p)
	}
	return p
}

func requests(res v1.ResourceName, q string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{res: resource.MustParse(q)}
	}
}

func TestRank(t *testing.T) {
	names := func(us []podUsage) string {
		var out []string
		for _, u := range us {
			out = append(out, u.pod.Name)
		}
		return strings.Join(out, " ")
	}
	mem := func(p *v1.Pod, used int64) podUsage { return podUsage{pod: p, memory: used} }
	pods := []podUsage{
		mem(pod("guaranteed-within", 0, requests(v1.ResourceMemory, "200Mi")), 150*mi),
		mem(pod("burstable-over-a-little", 0, requests(v1.ResourceMemory, "100Mi")), 110*mi),
		mem(pod("besteffort-small", 0), 10*mi),
		mem(pod("besteffort-large", 0), 300*mi),
		mem(pod("besteffort-high-priority", 1000), 900*mi),
		mem(pod("critical", 0, func(p *v1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }), 2000*mi),
		mem(pod("critical-by-priority", systemCriticalPriority), 2000*mi),
		mem(pod("finished", 0, func(p *v1.Pod) { p.Status.Phase = v1.PodFailed }), 2000*mi),
		mem(pod("deleted", 0, func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: t0} }), 2000*mi),
	}
	want := "besteffort-large burstable-over-a-little besteffort-small besteffort-high-priority guaranteed-within"
	if got := names(rank(MemoryAvailable, pods)); got != want {
		t.Errorf("memory ranking:\n got %s\nwant %s", got, want)
	}
	disk := func(p *v1.Pod, used int64) podUsage { return podUsage{pod: p, disk: used, inodes: used / 4096} }
	pods = []podUsage{
		disk(pod("requested-enough", 0, requests(v1.ResourceEphemeralStorage, "1Gi")), 500*mi),
		disk(pod("filler", 0), 400*mi),
		disk(pod("quiet", 0), 1*mi),
	}
	if got := names(rank(NodeFsAvailable, pods)); got != "filler quiet requested-enough" {
		t.Errorf("disk ranking: %s", got)
	}
	if got := names(rank(NodeFsInodesFree, pods)); got != "requested-enough filler quiet" {
		t.Errorf("inode ranking (nothing requests inodes): %s", got)
	}
}

func TestPodRequest(t *testing.T) {
	p := pod("p", 0, requests(v1.ResourceMemory, "100Mi"))
	p.Spec.InitContainers = []v1.Container{
		{Name: "init", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("150Mi")}}},
		{Name: "sidecar", RestartPolicy: ptr.To(v1.ContainerRestartPolicyAlways),
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("20Mi")}}},
	}
	if got := podRequest(p, v1.ResourceMemory); got != 150*mi {
		t.Errorf("request %d, want 150Mi (the init container's, above 100Mi + 20Mi)", got)
	}
	p.Spec.InitContainers[0].Resources.Requests[v1.ResourceMemory] = resource.MustParse("50Mi")
	if got := podRequest(p, v1.ResourceMemory); got != 120*mi {
		t.Errorf("request %d, want 120Mi (app and sidecar)", got)
	}
}

func TestMessage(t *testing.T) {
	p := pod("web", 0, requests(v1.ResourceMemory, "100Mi"))
	p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "quiet"})
	got := message(Threshold{Signal: MemoryAvailable, Quantity: 100 * mi, Hard: true}, reading{available: 50 * mi, capacity: 1 << 30},
		podUsage{pod: p, memory: 300 * mi, containersMemory: map[string]int64{"c": 300 * mi, "quiet": 0}})
	want := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 300Mi, request is 100Mi, has larger consumption of memory. "
	if got != want {
		t.Errorf("memory message:\n got %q\nwant %q", got, want)
	}
	got = message(Threshold{Signal: NodeFsAvailable, Percent: 10, Hard: true}, reading{available: 4 * mi, capacity: 100 * mi},
		podUsage{pod: pod("filler", 0), disk: 60 * mi})
	want = "The node was low on resource: ephemeral-storage. Threshold quantity: 10Mi, available: 4Mi. Pod was using 60Mi, request is 0, has larger consumption of ephemeral-storage. "
	if got != want {
		t.Errorf("disk message:\n got %q\nwant %q", got, want)
	}
}

func TestGracePeriod(t *testing.T) {
	p := pod("p", 0, func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30) })
	if g := gracePeriod(Threshold{Hard: true}, p, 60); g != 1 {
		t.Errorf("hard: %d, want 1", g)
	}
	if g := gracePeriod(Threshold{}, p, 10); g != 10 {
		t.Errorf("soft, capped: %d, want 10", g)
	}
	if g := gracePeriod(Threshold{}, p, 60); g != 30 {
		t.Errorf("soft, the pod's own: %d, want 30", g)
	}
}
