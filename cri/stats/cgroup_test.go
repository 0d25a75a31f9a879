package stats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestMain(m *testing.M) {
	// The cgroups library refuses files outside cgroupfs unless told that
	// a test is faking the tree.
	cgroups.TestMode = true
	os.Exit(m.Run())
}

var t0 = time.Unix(1_700_000_000, 0)

func fixedClock() time.Time { return t0 }

// writeTree creates files (relative path → content) below root.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const mib = 1 << 20

// v1Tree is a cgroup v1 container at /pod/ctr: 50 MiB in use, 10 MiB of
// it inactive file pages, 1.5 s of CPU, 3 tasks, no limit, swap
// accounting on with 2 MiB swapped out.
func v1Tree(limit string) map[string]string { return v1TreeSwap(limit, "9223372036854771712") }

// v1TreeSwap is v1Tree with a memory+swap limit.
func v1TreeSwap(limit, memswLimit string) map[string]string {
	return map[string]string{
		"memory/pod/ctr/memory.stat": "cache 999\nrss 999\nmapped_file 999\npgfault 4000\npgmajfault 5\n" +
			"total_cache 20971520\ntotal_rss 31457280\ntotal_inactive_file 10485760\n" +
			"total_active_file 5242880\ntotal_mapped_file 1048576\ntotal_pgfault 4242\ntotal_pgmajfault 7\n",
		"memory/pod/ctr/memory.usage_in_bytes":           "52428800\n",
		"memory/pod/ctr/memory.max_usage_in_bytes":       "60000000\n",
		"memory/pod/ctr/memory.failcnt":                  "0\n",
		"memory/pod/ctr/memory.limit_in_bytes":           limit + "\n",
		"memory/pod/ctr/memory.memsw.usage_in_bytes":     "54525952\n",
		"memory/pod/ctr/memory.memsw.max_usage_in_bytes": "60000000\n",
		"memory/pod/ctr/memory.memsw.failcnt":            "0\n",
		"memory/pod/ctr/memory.memsw.limit_in_bytes":     memswLimit + "\n",
		"memory/pod/ctr/memory.use_hierarchy":            "1\n",
		"cpuacct/pod/ctr/cpuacct.usage":                  "1500000000\n",
		"cpuacct/pod/ctr/cpuacct.stat":                   "user 100\nsystem 50\n",
		"cpuacct/pod/ctr/cpuacct.usage_percpu":           "1000000000 500000000\n",
		"cpuacct/pod/ctr/cpuacct.usage_all":              "cpu user system\n0 900000000 100000000\n1 400000000 100000000\n",
		"pids/pod/ctr/pids.current":                      "3\n",
		"pids/pod/ctr/pids.max":                          "max\n",
	}
}

func TestReadV1(t *testing.T) {
	tests := []struct {
		name          string
		limit, memsw  string
		wantLimit     uint64
		wantSwapLimit uint64
	}{
		{"unlimited", "9223372036854771712", "9223372036854771712", 0, 0},
		{"memory limited, swap not", "104857600", "9223372036854771712", 100 * mib, 0},
		{"memory and swap limited", "104857600", "157286400", 100 * mib, 50 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, v1TreeSwap(tt.limit, tt.memsw))
			r := NewReader(root, fixedClock)
			if r.Unified() {
				t.Fatal("v1 tree read as unified")
			}
			s, err := r.Read("/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			want := Sample{
				Time: t0,
				CPU:  CPU{UsageNanos: 1_500_000_000, UserNanos: 1_000_000_000, SystemNanos: 500_000_000},
				Memory: Memory{
					Usage: 50 * mib, WorkingSet: 40 * mib, RSS: 30 * mib, Cache: 20 * mib, MappedFile: mib,
					PageFaults: 4242, MajorPageFaults: 7, OwnPageFaults: 4000, OwnMajorPageFaults: 5,
					Limit: tt.wantLimit, Swap: 2 * mib, SwapLimit: tt.wantSwapLimit, SwapKnown: true,
				},
				Tasks: 3,
			}
			if s != want {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		})
	}
}

// Without swap accounting there are no memsw files: swap is unknown, not
// a wrapped-around difference.
func TestReadV1WithoutSwapAccounting(t *testing.T) {
	root := t.TempDir()
	files := v1Tree("9223372036854771712")
	for _, f := range []string{"usage_in_bytes", "max_usage_in_bytes", "failcnt", "limit_in_bytes"} {
		delete(files, "memory/pod/ctr/memory.memsw."+f)
	}
	writeTree(t, root, files)
	s, err := NewReader(root, fixedClock).Read("/pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.SwapKnown || s.Memory.Swap != 0 {
		t.Errorf("swap = %d (known %v), want unknown", s.Memory.Swap, s.Memory.SwapKnown)
	}
}

// A co-mounted "cpu,cpuacct" hierarchy is found by name.
func TestReadV1CoMounted(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{}
	for name, content := range v1Tree("9223372036854771712") {
		if rest, ok := strings.CutPrefix(name, "cpuacct/"); ok {
			name = "cpu,cpuacct/" + rest
		}
		files[name] = content
	}
	writeTree(t, root, files)
	s, err := NewReader(root, fixedClock).Read("/pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.UsageNanos != 1_500_000_000 {
		t.Errorf("cpu usage = %d, want 1500000000", s.CPU.UsageNanos)
	}
}

// v2Tree is a cgroup v2 container at /pod/ctr with the same usage as
// v1Tree.
func v2Tree(max string) map[string]string {
	return v2TreeSwap(max, "max")
}

// v2TreeSwap is v2Tree with memory.swap.max at swapMax, and without swap
// accounting for "".
func v2TreeSwap(max, swapMax string) map[string]string {
	t := map[string]string{
		"cgroup.controllers":          "cpu memory pids io\n",
		"pod/ctr/cgroup.controllers":  "cpu memory pids io\n",
		"pod/ctr/memory.stat":         "anon 31457280\nfile 20971520\nkernel 2097152\nfile_mapped 1048576\ninactive_file 10485760\nactive_file 5242880\npgfault 4242\npgmajfault 7\n",
		"pod/ctr/memory.current":      "52428800\n",
		"pod/ctr/memory.max":          max + "\n",
		"pod/ctr/memory.swap.current": "2097152\n",
		"pod/ctr/memory.swap.max":     "max\n",
		"pod/ctr/memory.pressure":     "some avg10=1.50 avg60=0.50 avg300=0.10 total=2000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n",
		"pod/ctr/cpu.stat":            "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
		"pod/ctr/cpu.pressure":        "some avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
		"pod/ctr/pids.current":        "3\n",
		"pod/ctr/pids.max":            "max\n",
		"pod/ctr/io.stat":             "",
	}
	if swapMax == "" {
		delete(t, "pod/ctr/memory.swap.current")
		delete(t, "pod/ctr/memory.swap.max")
	} else {
		t["pod/ctr/memory.swap.max"] = swapMax + "\n"
	}
	return t
}

func TestReadV2(t *testing.T) {
	tests := []struct {
		name      string
		max       string
		swapMax   string
		wantLimit uint64
		wantSwap  bool
	}{
		{"unlimited", "max", "max", 0, true},
		{"limited", "104857600", "max", 100 * mib, true},
		// NoSwap: accounted, none allowed; critest wants the series.
		{"swap off for the cgroup", "max", "0", 0, true},
		{"no swap accounting", "max", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, v2TreeSwap(tt.max, tt.swapMax))
			r := NewReader(root, fixedClock)
			if !r.Unified() {
				t.Fatal("v2 tree not read as unified")
			}
			s, err := r.Read("/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			wantMem := Memory{
				Usage: 50 * mib, WorkingSet: 40 * mib, RSS: 30 * mib, Cache: 20 * mib, MappedFile: mib,
				PageFaults: 4242, MajorPageFaults: 7, OwnPageFaults: 4242, OwnMajorPageFaults: 7,
				Limit: tt.wantLimit,
			}
			if tt.wantSwap {
				wantMem.Swap, wantMem.SwapKnown = 2*mib, true
			}
			if s.Memory != wantMem {
				t.Errorf("memory: got  %+v\nwant %+v", s.Memory, wantMem)
			}
			if want := (CPU{UsageNanos: 1_500_000_000, UserNanos: 1_000_000_000, SystemNanos: 500_000_000}); s.CPU != want {
				t.Errorf("cpu: got %+v, want %+v", s.CPU, want)
			}
			if s.Tasks != 3 {
				t.Errorf("tasks = %d, want 3", s.Tasks)
			}
			if p := s.MemoryPressure; p == nil || p.Some.TotalNanos != 2_000_000 || p.Some.Avg10 != 1.5 || p.Full.TotalNanos != 1_000_000 {
				t.Errorf("memory pressure = %+v", p)
			}
			if p := s.CPUPressure; p == nil || p.Some.TotalNanos != 3000 {
				t.Errorf("cpu pressure = %+v", p)
			}
			if s.IOPressure != nil {
				t.Errorf("io pressure = %+v, want none (no io.pressure file)", s.IOPressure)
			}
		})
	}
}

func TestReadMissingCgroupIsNotFound(t *testing.T) {
	for name, tree := range map[string]map[string]string{"v1": v1Tree("1"), "v2": v2Tree("max")} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tree)
			_, err := NewReader(root, fixedClock).Read("/pod/gone")
			if !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("err = %v, want NotFound", err)
			}
		})
	}
}

// Working set never goes below zero, whatever the kernel's counters say
// at the moment they are read.
func TestWorkingSetClamped(t *testing.T) {
	m := memoryOf(&cgroups.MemoryStats{
		Usage: cgroups.MemoryData{Usage: 100, Limit: 1000},
		Stats: map[string]uint64{"inactive_file": 150},
	}, true)
	if m.WorkingSet != 0 || m.Limit != 1000 {
		t.Errorf("got %+v, want working set 0 and limit 1000", m)
	}
}

func TestSampleAdd(t *testing.T) {
	later := t0.Add(time.Second)
	a := Sample{Time: t0, CPU: CPU{UsageNanos: 1, UserNanos: 2, SystemNanos: 3}, Tasks: 1,
		Memory: Memory{Usage: 10, WorkingSet: 5, RSS: 4, Cache: 6, MappedFile: 2, PageFaults: 7, MajorPageFaults: 1,
			OwnPageFaults: 5, OwnMajorPageFaults: 1, Limit: 100, Swap: 1, SwapKnown: true},
		CPUPressure: &Pressure{}}
	b := Sample{Time: later, CPU: CPU{UsageNanos: 10, UserNanos: 20, SystemNanos: 30}, Tasks: 2,
		Memory: Memory{Usage: 20, WorkingSet: 15, RSS: 14, Cache: 6, MappedFile: 1, PageFaults: 3, MajorPageFaults: 2,
			OwnPageFaults: 3, OwnMajorPageFaults: 0, Limit: 200, Swap: 2, SwapKnown: true}}
	want := Sample{Time: later, CPU: CPU{UsageNanos: 11, UserNanos: 22, SystemNanos: 33}, Tasks: 3,
		Memory: Memory{Usage: 30, WorkingSet: 20, RSS: 18, Cache: 12, MappedFile: 3, PageFaults: 10, MajorPageFaults: 3,
			OwnPageFaults: 8, OwnMajorPageFaults: 1, Swap: 3, SwapKnown: true}}
	if got := a.Add(b); got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got := (Sample{}).Add(a); got.Memory.SwapKnown {
		t.Errorf("swap known in a sum with an unknown part")
	}
}

func TestChildren(t *testing.T) {
	for name, tree := range map[string]map[string]string{"v1": v1Tree("1"), "v2": v2Tree("max")} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tree)
			r := NewReader(root, fixedClock)
			got, err := r.Children("/pod")
			if err != nil || len(got) != 1 || got[0] != "ctr" {
				t.Errorf("Children(/pod) = %v, %v; want [ctr]", got, err)
			}
			if _, err := r.Children("/nope"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("missing: err = %v, want NotFound", err)
			}
		})
	}
}
