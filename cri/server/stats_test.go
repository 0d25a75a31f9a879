package server

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

func TestOwnsCgroupParent(t *testing.T) {
	own := map[string]bool{"pause-id": true, "ctr-id": true}
	tests := []struct {
		name     string
		parent   string
		uid      string
		children []string
		want     bool
	}{
		{"kubelet cgroupfs pod parent", "/kubepods/burstable/pod1234-ab", "1234-ab", []string{"pause-id", "ctr-id"}, true},
		{"kubelet systemd pod parent", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice", "1234-ab", []string{"pause-id"}, true},
		{"no children yet", "/kubepods/pod1234-ab", "1234-ab", nil, true},
		{"a stranger inside", "/kubepods/burstable/pod1234-ab", "1234-ab", []string{"pause-id", "other-pod-pause"}, false},
		{"berth's default parent", "/berth", "1234-ab", []string{"pause-id"}, false},
		{"a QoS level", "/kubepods/besteffort", "1234-ab", []string{"pause-id"}, false},
		{"another pod's parent", "/kubepods/pod9999", "1234-ab", []string{"pause-id"}, false},
		{"no uid", "/kubepods/pod", "", nil, false},
	}
	for _, tt := range tests {
		if got := ownsCgroupParent(tt.parent, tt.uid, tt.children, own); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNetworkUsageDefaultInterface(t *testing.T) {
	at := time.Unix(100, 0)
	tests := []struct {
		name        string
		ifaces      []string
		wantDefault string
		wantOthers  []string
	}{
		{"eth0 is the default", []string{"net1", "eth0"}, "eth0", []string{"net1"}},
		{"else the first", []string{"net1", "net2"}, "net1", []string{"net2"}},
		{"none", nil, "", nil},
	}
	for _, tt := range tests {
		ns := &stats.NetworkSample{Time: at}
		for i, n := range tt.ifaces {
			ns.Interfaces = append(ns.Interfaces, stats.Interface{Name: n, RxBytes: uint64(i + 1)})
		}
		got := networkUsage(ns)
		if got.GetTimestamp() != at.UnixNano() {
			t.Errorf("%s: timestamp %d", tt.name, got.GetTimestamp())
		}
		if got.GetDefaultInterface().GetName() != tt.wantDefault {
			t.Errorf("%s: default %q, want %q", tt.name, got.GetDefaultInterface().GetName(), tt.wantDefault)
		}
		var others []string
		for _, i := range got.GetInterfaces() {
			others = append(others, i.GetName())
		}
		if len(others) != len(tt.wantOthers) || (len(others) > 0 && others[0] != tt.wantOthers[0]) {
			t.Errorf("%s: others %v, want %v", tt.name, others, tt.wantOthers)
		}
	}
}

func availablePtr(v uint64) *uint64 { return &v }

func TestMemoryUsageAvailable(t *testing.T) {
	tests := []struct {
		name          string
		mem           stats.Memory
		wantAvailable *uint64
	}{
		{"no limit: no available bytes", stats.Memory{WorkingSet: 10}, nil},
		{"under the limit", stats.Memory{WorkingSet: 30, Limit: 100}, availablePtr(70)},
		{"over the limit (charged before it was lowered)", stats.Memory{WorkingSet: 130, Limit: 100}, availablePtr(0)},
	}
	for _, tt := range tests {
		got := memoryUsage(&stats.Sample{Time: time.Unix(1, 0), Memory: tt.mem}).GetAvailableBytes()
		switch {
		case tt.wantAvailable == nil && got != nil:
			t.Errorf("%s: available %d, want none", tt.name, got.GetValue())
		case tt.wantAvailable != nil && (got == nil || got.GetValue() != *tt.wantAvailable):
			t.Errorf("%s: available %v, want %d", tt.name, got, *tt.wantAvailable)
		}
	}
}

// Every series names a described metric and carries one value per label
// key, as kubelet's CRI metrics collector requires.
func TestPodMetricsMatchDescriptors(t *testing.T) {
	resp, err := (&Service{}).ListMetricDescriptors(t.Context(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range resp.GetDescriptors() {
		if _, dup := keys[d.GetName()]; dup {
			t.Errorf("%s described twice", d.GetName())
		}
		keys[d.GetName()] = len(d.GetLabelKeys())
	}

	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u"}}
	sb := store.NewSandbox(t.TempDir(), store.SandboxMeta{ID: "sb"})
	sb.Meta.Config.Msg = sbCfg
	c := store.NewContainer(t.TempDir(), store.ContainerMeta{ID: "c1", SandboxID: "sb"})
	c.Meta.Config.Msg = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
	if err := c.Commit(store.ContainerStatus{State: store.ContainerRunning, StartedAt: time.Unix(50, 0).UnixNano()}); err != nil {
		t.Fatal(err)
	}
	sample := &stats.Sample{Time: time.Unix(100, 0), CPU: stats.CPU{UsageNanos: 3_500_000_000}, Memory: stats.Memory{Usage: 10, SwapKnown: true}}
	u := podUsage{
		cgroup:     sample,
		network:    &stats.NetworkSample{Interfaces: []stats.Interface{{Name: "eth0", RxBytes: 7}}},
		containers: []*store.Container{c},
		usage:      []containerUsage{{cgroup: sample}},
	}
	m := podMetrics(sb, u)
	all := m.GetMetrics()
	for _, cm := range m.GetContainerMetrics() {
		all = append(all, cm.GetMetrics()...)
	}
	seen := map[string]bool{}
	for _, series := range all {
		n, ok := keys[series.GetName()]
		if !ok {
			t.Errorf("%s is not described", series.GetName())
			continue
		}
		if len(series.GetLabelValues()) != n {
			t.Errorf("%s: %d label values for %d keys: %v", series.GetName(), len(series.GetLabelValues()), n, series.GetLabelValues())
		}
		seen[series.GetName()] = true
	}
	for name := range keys {
		if !seen[name] {
			t.Errorf("%s described but never reported", name)
		}
	}
	for _, series := range m.GetContainerMetrics()[0].GetMetrics() {
		if series.GetName() == "container_cpu_usage_seconds_total" && series.GetValue().GetValue() != 3 {
			t.Errorf("cpu seconds = %d, want 3", series.GetValue().GetValue())
		}
		if series.GetLabelValues()[0] != "app" || series.GetLabelValues()[1] != "c1" || series.GetLabelValues()[5] != "web" {
			t.Errorf("%s: labels %v", series.GetName(), series.GetLabelValues())
		}
	}
}
