package server

import (
	"testing"
	"time"

	"github.com/berth-project/berth/cri/stats"
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
