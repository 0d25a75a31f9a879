package eviction

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

type podList []v1.Pod

func (p podList) Pods() []v1.Pod { return p }

type eviction struct {
	name, message string
	grace         int64
}

type evictor struct {
	evicted []eviction
	refuse  map[string]bool
}

func (e *evictor) Evict(_, name string, _ types.UID, message string, grace int64) error {
	if e.refuse[name] {
		return errors.New("refused")
	}
	e.evicted = append(e.evicted, eviction{name, message, grace})
	return nil
}

type noStats struct{}

func (noStats) ListPodSandboxStats(context.Context, *runtimeapi.ListPodSandboxStatsRequest, ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{}, nil
}

// images frees what it is told, and then the filesystem has that much more.
type images struct {
	calls int
	frees int64
	fs    *reading
}

func (i *images) RemoveUnused(context.Context) (uint64, error) {
	i.calls++
	i.fs.available += i.frees
	return uint64(i.frees), nil
}

func newTestManager(t *testing.T, fs *reading, pods podList, ev *evictor, im *images) *Manager {
	t.Helper()
	m := New(Config{
		Thresholds: []Threshold{{Signal: NodeFsAvailable, Percent: 10, Hard: true, MinReclaimPercent: 5}},
		Root:       t.TempDir(), PodDir: t.TempDir(), LogDir: t.TempDir(),
		Pods: pods, Evictor: ev, Stats: noStats{}, Images: im,
		Clock: clocktesting.NewFakeClock(t0),
	})
	m.measure = func(context.Context) (map[Signal]reading, error) {
		return map[Signal]reading{NodeFsAvailable: *fs}, nil
	}
	return m
}

func TestSynchronizeReclaimsImagesFirst(t *testing.T) {
	fs := &reading{available: 5, capacity: 100}
	ev := &evictor{}
	im := &images{frees: 12, fs: fs}
	m := newTestManager(t, fs, podList{*pod("a", 0)}, ev, im)
	if err := m.Synchronize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if im.calls != 1 || len(ev.evicted) != 0 {
		t.Errorf("image reclaims %d, evictions %v; want one reclaim that sufficed (17 of 100 ≥ 10 %% + 5 %%)", im.calls, ev.evicted)
	}
	if p := m.Pressure(); !p.Disk || p.Memory {
		t.Errorf("pressure %+v, want disk (it was met at this pass)", p)
	}
}

func TestSynchronizeEvictsOnePodPerPass(t *testing.T) {
	fs := &reading{available: 5, capacity: 100}
	ev := &evictor{refuse: map[string]bool{"first": true}}
	im := &images{frees: 8, fs: fs} // 13 of 100: above 10 %, short of the 5 % reclaim
	m := newTestManager(t, fs, podList{*pod("first", 0), *pod("second", 0), *pod("third", 0)}, ev, im)
	if err := m.Synchronize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ev.evicted) != 1 || ev.evicted[0].name != "second" || ev.evicted[0].grace != 1 {
		t.Fatalf("evicted %+v; want only second (first refused) with a grace of 1 s", ev.evicted)
	}
	if got := testutil.ToFloat64(m.evictions.WithLabelValues("nodefs.available")); got != 1 {
		t.Errorf("kubelet_evictions{eviction_signal=nodefs.available} = %v, want 1", got)
	}
	if testutil.CollectAndCount(m.Collector(), "kubelet_evictions") != 1 {
		t.Error("the collector does not expose kubelet_evictions")
	}
}

func TestSynchronizeNothingToDo(t *testing.T) {
	fs := &reading{available: 50, capacity: 100}
	ev := &evictor{}
	im := &images{fs: fs}
	m := newTestManager(t, fs, podList{*pod("a", 0)}, ev, im)
	if err := m.Synchronize(context.Background()); err != nil || im.calls != 0 || len(ev.evicted) != 0 || m.Pressure().Disk {
		t.Errorf("err %v, reclaims %d, evictions %v, pressure %+v; want nothing", err, im.calls, ev.evicted, m.Pressure())
	}
}
