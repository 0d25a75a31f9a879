package eviction

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryReading(t *testing.T) {
	const meminfo = "MemTotal:        2000000 kB\nMemFree:          500000 kB\nInactive(file):   100000 kB\n"
	const total = 2000000 << 10
	for _, tc := range []struct {
		name  string
		files map[string]string // below the cgroup fs
		want  int64
	}{
		{"cgroup v2: anon + file - inactive_file of the root's memory.stat",
			map[string]string{"memory.stat": "anon 600000000\nfile 400000000\ninactive_file 150000000\n"},
			total - (600000000 + 400000000 - 150000000)},
		{"cgroup v1: usage_in_bytes - total_inactive_file of the root memory cgroup",
			map[string]string{"memory/memory.stat": "cache 1\ntotal_inactive_file 200000000\n", "memory/memory.usage_in_bytes": "900000000\n"},
			total - (900000000 - 200000000)},
		{"no memory cgroup: MemFree + Inactive(file)", nil, (500000 + 100000) << 10},
		{"more inactive file than in use counts as nothing in use",
			map[string]string{"memory.stat": "anon 0\nfile 10\ninactive_file 20\n"}, total},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mi := filepath.Join(dir, "meminfo")
			if err := os.WriteFile(mi, []byte(meminfo), 0o644); err != nil {
				t.Fatal(err)
			}
			cg := filepath.Join(dir, "cgroup")
			for name, content := range tc.files {
				p := filepath.Join(cg, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := memoryReading(mi, cg)
			if err != nil {
				t.Fatal(err)
			}
			if r.available != tc.want || r.capacity != total {
				t.Errorf("available %d of %d, want %d of %d", r.available, r.capacity, tc.want, int64(total))
			}
		})
	}
	if _, err := memoryReading(filepath.Join(t.TempDir(), "none"), t.TempDir()); err == nil {
		t.Error("no error without meminfo")
	}
}
