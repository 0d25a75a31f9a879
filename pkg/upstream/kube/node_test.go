package kube

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/eviction"
)

var t0 = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

func runtimeStatus(runtimeReady, networkReady bool) *runtimeapi.RuntimeStatus {
	return &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: runtimeReady},
		{Type: runtimeapi.NetworkReady, Status: networkReady, Reason: "NetworkPluginNotReady", Message: "no network config"},
	}}
}

func TestNodeConditions(t *testing.T) {
	ready := func(f nodeFacts) v1.NodeCondition {
		for _, c := range nodeConditions(f) {
			if c.Type == v1.NodeReady {
				return c
			}
		}
		t.Fatal("no Ready condition")
		return v1.NodeCondition{}
	}
	tests := []struct {
		name   string
		facts  nodeFacts
		status v1.ConditionStatus
		msg    string
	}{
		{"runtime and network ready", nodeFacts{runtime: runtimeStatus(true, true)}, v1.ConditionTrue, "berth is posting ready status"},
		{"network not ready", nodeFacts{runtime: runtimeStatus(true, false)}, v1.ConditionFalse,
			"container runtime network not ready: container runtime status check: NetworkReady is false: NetworkPluginNotReady: no network config"},
		{"runtime not ready", nodeFacts{runtime: runtimeStatus(false, true)}, v1.ConditionFalse, "container runtime status check: RuntimeReady is false"},
		{"runtime down", nodeFacts{runtimeErr: errors.New("connection refused")}, v1.ConditionFalse, "container runtime is down: connection refused"},
		{"no conditions", nodeFacts{runtime: &runtimeapi.RuntimeStatus{}}, v1.ConditionFalse, "container runtime status check: RuntimeReady is false"},
	}
	for _, tt := range tests {
		c := ready(tt.facts)
		if c.Status != tt.status || c.Message != tt.msg {
			t.Errorf("%s: Ready %s %q, want %s %q", tt.name, c.Status, c.Message, tt.status, tt.msg)
		}
	}

	// Transition times move only with the status; heartbeats always.
	before := nodeConditions(nodeFacts{runtime: runtimeStatus(true, true), now: t0})
	later := metav1.NewTime(t0.Add(time.Minute))
	same := nodeConditions(nodeFacts{runtime: runtimeStatus(true, true), now: later, conditionsBefore: before})
	flipped := nodeConditions(nodeFacts{runtime: runtimeStatus(true, false), now: later, conditionsBefore: before})
	for i := range same {
		if !same[i].LastTransitionTime.Equal(&t0) || !same[i].LastHeartbeatTime.Equal(&later) {
			t.Errorf("%s unchanged: transition %v heartbeat %v", same[i].Type, same[i].LastTransitionTime, same[i].LastHeartbeatTime)
		}
		want := t0
		if flipped[i].Type == v1.NodeReady {
			want = later
		}
		if !flipped[i].LastTransitionTime.Equal(&want) {
			t.Errorf("%s after Ready flipped: transition %v, want %v", flipped[i].Type, flipped[i].LastTransitionTime, want)
		}
	}
	// A status that differs only in heartbeats need not be written.
	a := nodeStatus(nodeFacts{runtime: runtimeStatus(true, true), now: t0})
	b := nodeStatus(nodeFacts{runtime: runtimeStatus(true, true), now: later, conditionsBefore: a.Conditions})
	c := nodeStatus(nodeFacts{runtime: runtimeStatus(true, false), now: later, conditionsBefore: a.Conditions})
	if !sameStatus(a, b) || sameStatus(a, c) {
		t.Errorf("sameStatus: heartbeat only %v, Ready flipped %v", sameStatus(a, b), sameStatus(a, c))
	}
}

func TestResources(t *testing.T) {
	f := machineFacts{cores: 2, memory: 4 << 30, hugePages: map[uint64]uint64{2048: 10}, ephemeralStorage: 100 << 30}
	hard, _, err := eviction.Settings{Hard: eviction.DefaultHard()}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	capacity, alloc := resources(f, 110, hard)
	want := map[v1.ResourceName][2]string{
		v1.ResourceCPU:              {"2", "2"},
		v1.ResourceMemory:           {"4Gi", "3976Mi"}, // less the 100Mi eviction reserve and 20Mi of huge pages
		v1.ResourcePods:             {"110", "110"},
		v1.ResourceEphemeralStorage: {"100Gi", "90Gi"},
		"hugepages-2Mi":             {"20Mi", "20Mi"},
	}
	for r, w := range want {
		c, a := capacity[r], alloc[r]
		if c.String() != w[0] || a.String() != w[1] {
			t.Errorf("%s: capacity %s allocatable %s, want %s %s", r, c.String(), a.String(), w[0], w[1])
		}
	}
	if len(capacity) != len(want) {
		t.Errorf("capacity %v", capacity)
	}
	// Configured thresholds, absolute or relative, are what is held back.
	hard = []eviction.Threshold{{Signal: eviction.MemoryAvailable, Percent: 25, Hard: true}, {Signal: eviction.NodeFsAvailable, Quantity: 1 << 30, Hard: true}}
	_, alloc = resources(f, 110, hard)
	if m, s := alloc[v1.ResourceMemory], alloc[v1.ResourceEphemeralStorage]; m.String() != "3052Mi" || s.String() != "99Gi" {
		t.Errorf("allocatable memory %s storage %s, want 3052Mi (4Gi less 25 %% and 20Mi) and 99Gi", m.String(), s.String())
	}
	_, alloc = resources(f, 110, nil)
	if s := alloc[v1.ResourceEphemeralStorage]; s.String() != "100Gi" {
		t.Errorf("without thresholds: allocatable storage %s", s.String())
	}
}

func TestPressureConditions(t *testing.T) {
	conds := nodeConditions(nodeFacts{runtime: runtimeStatus(true, true), diskPressure: true})
	for _, c := range conds {
		switch c.Type {
		case v1.NodeDiskPressure:
			if c.Status != v1.ConditionTrue || c.Reason != "KubeletHasDiskPressure" {
				t.Errorf("DiskPressure %+v", c)
			}
		case v1.NodeMemoryPressure, v1.NodePIDPressure:
			if c.Status != v1.ConditionFalse {
				t.Errorf("%s %+v", c.Type, c)
			}
		}
	}
}

func TestNodeImages(t *testing.T) {
	var imgs []*runtimeapi.Image
	for i := range maxNodeImages + 5 {
		imgs = append(imgs, &runtimeapi.Image{Id: fmt.Sprint(i), Size: uint64(i), RepoTags: []string{fmt.Sprintf("img:%d", i)}})
	}
	imgs = append(imgs,
		&runtimeapi.Image{Id: "nameless", Size: 1 << 40},
		&runtimeapi.Image{Id: "big", Size: 1 << 30, RepoDigests: []string{"img@sha256:1"},
			RepoTags: []string{"a:1", "b:1", "c:1", "d:1", "e:1", "f:1"}})
	got := nodeImages(imgs)
	if len(got) != maxNodeImages {
		t.Fatalf("%d images listed, want %d", len(got), maxNodeImages)
	}
	if want := []string{"img@sha256:1", "a:1", "b:1", "c:1", "d:1"}; !slices.Equal(got[0].Names, want) || got[0].SizeBytes != 1<<30 {
		t.Errorf("largest image %+v, want names %q", got[0], want)
	}
	if last := got[len(got)-1]; last.Names[0] != fmt.Sprintf("img:%d", maxNodeImages+5-(maxNodeImages-1)) {
		t.Errorf("smallest listed image %+v: the smallest ones should be left out", last)
	}
}
