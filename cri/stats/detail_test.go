package stats

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berth-project/berth/cri/errdefs"
)

func u64p(v uint64) *uint64 { return &v }

// v1DetailTree adds to v1Tree what Detail reads: 4 throttled periods of
// 20 costing 1.5 s, 3 limit hits, a 60 MB peak, 1 MiB of kernel memory,
// one OOM kill, a limit of 100 tasks, and I/O on two devices.
func v1DetailTree() map[string]string {
	tree := v1Tree("104857600")
	maps.Copy(tree, map[string]string{
		"memory/pod/ctr/memory.failcnt":             "3\n",
		"memory/pod/ctr/memory.kmem.usage_in_bytes": "1048576\n",
		"memory/pod/ctr/memory.oom_control":         "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
		"pids/pod/ctr/pids.max":                     "100\n",
		"cpu/pod/ctr/cpu.stat":                      "nr_periods 20\nnr_throttled 4\nthrottled_time 1500000000\nnr_bursts 0\nburst_time 0\n",
		"blkio/pod/ctr/blkio.throttle.io_service_bytes_recursive": "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n254:0 Total 12288\n" +
			"8:16 Read 512\n8:16 Write 0\n8:16 Total 512\nTotal 12800\n",
		"blkio/pod/ctr/blkio.throttle.io_serviced_recursive": "254:0 Read 1\n254:0 Write 2\n254:0 Total 3\n8:16 Read 1\n8:16 Write 0\n8:16 Total 1\nTotal 4\n",
	})
	return tree
}

func v2DetailTree() map[string]string {
	tree := v2Tree("104857600")
	maps.Copy(tree, map[string]string{
		"pod/ctr/cpu.stat":      "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 20\nnr_throttled 4\nthrottled_usec 1500000\n",
		"pod/ctr/memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
		"pod/ctr/memory.peak":   "60000000\n",
		"pod/ctr/memory.stat":   "anon 31457280\nfile 20971520\nkernel 1048576\n",
		"pod/ctr/pids.max":      "100\n",
		"pod/ctr/io.stat":       "8:16 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	return tree
}

func TestDetail(t *testing.T) {
	want := Detail{
		KernelMemory: u64p(mib),
		OOMKills:     1,
		IO: []DeviceIO{
			{Major: 8, Minor: 16, ReadBytes: 512, Reads: 1},
			{Major: 254, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2},
		},
		Own: &OwnDetail{
			CFS:           &CFS{Periods: 20, ThrottledPeriods: 4, ThrottledNanos: 1_500_000_000},
			MemoryFailcnt: 3, MaxMemoryUsage: u64p(60000000), TasksLimit: 100,
		},
	}
	for name, tree := range map[string]map[string]string{"v1": v1DetailTree(), "v2": v2DetailTree()} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tree)
			got, err := NewReader(root, fixedClock).Detail("/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %s\nwant %s", showDetail(got), showDetail(want))
			}
		})
	}
}

// What a kernel or a mount lacks is unknown, not 0; no pids limit is 0.
func TestDetailWithout(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		tree := v1DetailTree()
		delete(tree, "memory/pod/ctr/memory.kmem.usage_in_bytes")
		delete(tree, "memory/pod/ctr/memory.max_usage_in_bytes")
		tree["pids/pod/ctr/pids.max"] = "max\n"
		for name := range tree {
			if filepath.Dir(filepath.Dir(filepath.Dir(name))) == "blkio" || filepath.Dir(filepath.Dir(filepath.Dir(name))) == "cpu" {
				delete(tree, name) // hierarchies not mounted
			}
		}
		root := t.TempDir()
		writeTree(t, root, tree)
		d, err := NewReader(root, fixedClock).Detail("/pod/ctr")
		if err != nil {
			t.Fatal(err)
		}
		if d.KernelMemory != nil || d.Own.MaxMemoryUsage != nil || d.Own.CFS != nil || d.IO != nil || d.Own.TasksLimit != 0 {
			t.Errorf("got %s, want kernel memory, peak, CFS and I/O unknown, no task limit", showDetail(d))
		}
	})
	t.Run("v2", func(t *testing.T) {
		tree := v2DetailTree()
		delete(tree, "pod/ctr/memory.peak") // before Linux 5.19
		delete(tree, "pod/ctr/io.stat")
		tree["pod/ctr/cpu.stat"] = "usage_usec 1500000\n" // cpu controller not enabled
		tree["pod/ctr/memory.stat"] = "anon 1\n"          // before Linux 5.18
		tree["pod/ctr/pids.max"] = "max\n"
		root := t.TempDir()
		writeTree(t, root, tree)
		d, err := NewReader(root, fixedClock).Detail("/pod/ctr")
		if err != nil {
			t.Fatal(err)
		}
		if d.KernelMemory != nil || d.Own.MaxMemoryUsage != nil || d.Own.CFS != nil || len(d.IO) != 0 || d.Own.TasksLimit != 0 {
			t.Errorf("got %s, want kernel memory, peak, CFS and I/O unknown, no task limit", showDetail(d))
		}
	})
}

func TestDetailMissingCgroupIsNotFound(t *testing.T) {
	for name, tree := range map[string]map[string]string{"v1": v1DetailTree(), "v2": v2DetailTree()} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tree)
			if _, err := NewReader(root, fixedClock).Detail("/pod/gone"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("err = %v, want NotFound", err)
			}
		})
	}
}

func TestDetailAdd(t *testing.T) {
	a := Detail{KernelMemory: u64p(1), OOMKills: 1, Own: &OwnDetail{TasksLimit: 5},
		IO: []DeviceIO{{Major: 8, Minor: 0, ReadBytes: 1, Writes: 1}, {Major: 254, Minor: 0, ReadBytes: 10}}}
	b := Detail{KernelMemory: u64p(2), OOMKills: 2, Own: &OwnDetail{TasksLimit: 6},
		IO: []DeviceIO{{Major: 254, Minor: 0, ReadBytes: 20, WriteBytes: 3}, {Major: 8, Minor: 1, Reads: 4}}}
	want := Detail{KernelMemory: u64p(3), OOMKills: 3,
		IO: []DeviceIO{{Major: 8, Minor: 0, ReadBytes: 1, Writes: 1}, {Major: 8, Minor: 1, Reads: 4}, {Major: 254, Minor: 0, ReadBytes: 30, WriteBytes: 3}}}
	if got := a.Add(b); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %s\nwant %s", showDetail(got), showDetail(want))
	}
	if got := a.Add(Detail{}); got.KernelMemory != nil {
		t.Errorf("kernel memory known in a sum with an unknown part")
	}
	if len(a.IO) != 2 || a.IO[1].ReadBytes != 10 {
		t.Errorf("Add changed its operand: %+v", a.IO)
	}
}

// showDetail prints d with its pointers followed.
func showDetail(d Detail) string {
	s := fmt.Sprintf("{oom %d io %+v", d.OOMKills, d.IO)
	if d.KernelMemory != nil {
		s += fmt.Sprintf(" kernel %d", *d.KernelMemory)
	}
	if o := d.Own; o != nil {
		s += fmt.Sprintf(" own %+v", *o)
		if o.CFS != nil {
			s += fmt.Sprintf(" cfs %+v", *o.CFS)
		}
		if o.MaxMemoryUsage != nil {
			s += fmt.Sprintf(" peak %d", *o.MaxMemoryUsage)
		}
	}
	return s + "}"
}

func TestDeviceNames(t *testing.T) {
	sys := t.TempDir()
	block := filepath.Join(sys, "dev", "block")
	if err := os.MkdirAll(block, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../devices/pci0000:00/0000:00:05.0/virtio2/block/vda", filepath.Join(block, "254:0")); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0}
	names := newDeviceNames(sys, clock.Now)
	if got := names.name(254, 0); got != "/dev/vda" {
		t.Errorf("254:0 = %q, want /dev/vda", got)
	}
	if got := names.name(8, 0); got != "" {
		t.Errorf("8:0 = %q, want none", got)
	}
	// Remembered for a while, then looked up again.
	if err := os.Symlink("../../devices/virtual/block/sda", filepath.Join(block, "8:0")); err != nil {
		t.Fatal(err)
	}
	if got := names.name(8, 0); got != "" {
		t.Errorf("8:0 within the TTL = %q, want the remembered none", got)
	}
	clock.Add(deviceNameTTL + time.Second)
	if got := names.name(8, 0); got != "/dev/sda" {
		t.Errorf("8:0 after the TTL = %q, want /dev/sda", got)
	}
}
