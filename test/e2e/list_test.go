package e2e

import (
	"sort"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// filterFixture is two pods holding a container in each state: in pod a
// one running and one created, in pod b one running and one exited. The
// running ones are labelled container=run.
type filterFixture struct {
	a, b                            string // sandbox IDs
	running, created, other, exited string // container IDs
}

func (e *env) filterFixture(prefix string) filterFixture {
	e.t.Helper()
	var f filterFixture
	podA := e.podConfig(prefix + "-a")
	f.a = e.runPod(podA)
	podB := e.podConfig(prefix + "-b")
	f.b = e.runPod(podB)
	f.running = e.start(f.a, podA, containerConfig("run", []string{"sleep", "3600"}))
	f.created = e.create(f.a, podA, containerConfig("made", []string{"true"}))
	f.other = e.start(f.b, podB, containerConfig("run", []string{"sleep", "3600"}))
	f.exited = e.start(f.b, podB, containerConfig("done", []string{"true"}))
	e.waitExited(f.exited)
	return f
}

func TestListContainersFilters(t *testing.T) {
	e := newEnv(t)
	f := e.filterFixture("list")
	a, b, running, created, other, exited := f.a, f.b, f.running, f.created, f.other, f.exited

	list := func(f *runtimeapi.ContainerFilter) []string {
		t.Helper()
		resp, err := e.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range resp.GetContainers() {
			ids = append(ids, c.GetId())
		}
		sort.Strings(ids)
		return ids
	}
	ids := func(x ...string) []string { sort.Strings(x); return x }
	state := func(s runtimeapi.ContainerState) *runtimeapi.ContainerStateValue {
		return &runtimeapi.ContainerStateValue{State: s}
	}
	tests := []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"all", nil, ids(running, created, other, exited)},
		{"by id", &runtimeapi.ContainerFilter{Id: running}, ids(running)},
		{"by id prefix", &runtimeapi.ContainerFilter{Id: created[:12]}, ids(created)},
		{"by sandbox", &runtimeapi.ContainerFilter{PodSandboxId: a}, ids(running, created)},
		{"running", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_RUNNING)}, ids(running, other)},
		{"created", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_CREATED)}, ids(created)},
		{"exited", &runtimeapi.ContainerFilter{State: state(runtimeapi.ContainerState_CONTAINER_EXITED)}, ids(exited)},
		{"label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"container": "run"}}, ids(running, other)},
		{"label and sandbox", &runtimeapi.ContainerFilter{PodSandboxId: b, LabelSelector: map[string]string{"container": "run"}}, ids(other)},
		{"no match", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"container": "nope"}}, nil},
	}
	for _, tt := range tests {
		if got := list(tt.filter); !equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
