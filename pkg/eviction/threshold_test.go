package eviction

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	ths, warnings, err := Settings{
		Hard:            map[string]string{"memory.available": "100Mi", "nodefs.available": "10%", "imagefs.inodesFree": "0%", "pid.available": "5%"},
		Soft:            map[string]string{"nodefs.inodesFree": "1000"},
		SoftGracePeriod: map[string]string{"nodefs.inodesFree": "1m30s"},
		MinimumReclaim:  map[string]string{"nodefs.available": "1Gi"},
	}.Parse()
	if err != nil {
		t.Fatal(err)
	}
	want := []Threshold{
		{Signal: MemoryAvailable, Quantity: 100 << 20, Hard: true},
		{Signal: NodeFsAvailable, Percent: 10, Hard: true, MinReclaimQuantity: 1 << 30},
		{Signal: NodeFsInodesFree, Quantity: 1000, GracePeriod: 90 * time.Second},
	}
	if len(ths) != len(want) {
		t.Fatalf("thresholds %+v, want %+v", ths, want)
	}
	for i := range want {
		if ths[i] != want[i] {
			t.Errorf("threshold %d = %+v, want %+v", i, ths[i], want[i])
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "evictionHard: signal pid.available is not observed") {
		t.Errorf("warnings %q", warnings)
	}
	if got := ths[0].String() + " " + ths[1].String() + " " + ths[2].String(); got != "100Mi 10% 1000" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"unknown signal", Settings{Hard: map[string]string{"disk.free": "1Gi"}}, `evictionHard: unknown signal "disk.free"`},
		{"bad quantity", Settings{Hard: map[string]string{"memory.available": "lots"}}, `evictionHard: memory.available: "lots" is not a quantity`},
		{"negative", Settings{Hard: map[string]string{"memory.available": "-1Mi"}}, `"-1Mi" is not a quantity`},
		{"percent over 100", Settings{Hard: map[string]string{"nodefs.available": "120%"}}, `evictionHard: nodefs.available: "120%" is not a percentage`},
		{"soft without grace", Settings{Soft: map[string]string{"memory.available": "1Gi"}}, "evictionSoft: memory.available: a soft threshold needs its evictionSoftGracePeriod"},
		{"bad grace", Settings{Soft: map[string]string{"memory.available": "1Gi"}, SoftGracePeriod: map[string]string{"memory.available": "soon"}},
			`evictionSoftGracePeriod: memory.available: "soon" is not a duration`},
		{"grace without soft", Settings{SoftGracePeriod: map[string]string{"memory.available": "1m"}}, "evictionSoftGracePeriod: memory.available: no evictionSoft threshold"},
		{"reclaim without threshold", Settings{MinimumReclaim: map[string]string{"memory.available": "1Gi"}}, "evictionMinimumReclaim: memory.available: no threshold"},
		{"negative max grace", Settings{MaxPodGracePeriod: -1}, "evictionMaxPodGracePeriod: -1 must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.s.Parse()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseDefaultsAndDisabling(t *testing.T) {
	ths, _, err := Settings{Hard: DefaultHard()}.Parse()
	if err != nil || len(ths) != 4 {
		t.Fatalf("defaults: %+v, %v; want 4 thresholds", ths, err)
	}
	for _, v := range []string{"0", "0%", "100%"} {
		ths, _, err := Settings{Hard: map[string]string{"memory.available": v}}.Parse()
		if err != nil || len(ths) != 0 {
			t.Errorf("%q: %+v, %v; want the signal disabled", v, ths, err)
		}
	}
}

func TestParseList(t *testing.T) {
	m, err := ParseList("memory.available<100Mi, nodefs.available<10%", '<')
	if err != nil || len(m) != 2 || m["memory.available"] != "100Mi" || m["nodefs.available"] != "10%" {
		t.Errorf("ParseList = %v, %v", m, err)
	}
	if m, err := ParseList("", '<'); err != nil || len(m) != 0 {
		t.Errorf("empty: %v, %v", m, err)
	}
	for _, bad := range []string{"memory.available", "memory.available<", "a<1,a<2"} {
		if _, err := ParseList(bad, '<'); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
}
