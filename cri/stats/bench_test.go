package stats

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchCgroup makes an empty cgroup in every hierarchy a Reader reads and
// returns its relative path; it needs root.
func benchCgroup(b *testing.B, r *Reader) string {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root to create a cgroup")
	}
	dir := fmt.Sprintf("/berth-stats-bench-%d", os.Getpid())
	roots := []string{r.root}
	if !r.unified {
		roots = roots[:0]
		for _, h := range r.v1 {
			roots = append(roots, h)
		}
	}
	for _, h := range roots {
		p := filepath.Join(h, dir)
		if err := os.Mkdir(p, 0o755); err != nil {
			b.Skipf("cannot create a cgroup: %v", err)
		}
		b.Cleanup(func() { os.Remove(p) })
	}
	return dir
}

// BenchmarkContainerStats is what one container costs in a
// ListContainerStats call: a read of its (real) cgroup, the CPU rate
// bookkeeping, and its writable layer usage from the cache.
func BenchmarkContainerStats(b *testing.B) {
	c := New(Config{LayerTTL: time.Hour})
	dir := benchCgroup(b, c.cgroups)
	upper := b.TempDir()
	if _, err := c.WritableLayer(upper); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := c.Cgroup(dir)
		if err != nil {
			b.Fatal(err)
		}
		c.NanoCores("bench", s)
		if _, err := c.WritableLayer(upper); err != nil {
			b.Fatal(err)
		}
	}
}

// benchProcess starts a process with a few open files (a shell, its
// standard streams, a pipe and a socket-less file) in the cgroup at dir
// of every hierarchy r reads, and stops it when the benchmark ends.
func benchProcess(b *testing.B, r *Reader, dir string) {
	b.Helper()
	cmd := exec.Command("sh", "-c", "exec 3</dev/null 4</dev/null 5</dev/null; sleep 3600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	roots := []string{r.root}
	if !r.unified {
		roots = roots[:0]
		for _, h := range r.v1 {
			roots = append(roots, h)
		}
	}
	for _, h := range roots {
		if err := os.WriteFile(filepath.Join(h, dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContainerMetrics is what one container costs in a
// ListPodSandboxMetrics call beyond BenchmarkContainerStats: its cgroup's
// detail and its processes' files (one process with six).
func BenchmarkContainerMetrics(b *testing.B) {
	c := New(Config{LayerTTL: time.Hour})
	dir := benchCgroup(b, c.cgroups)
	benchProcess(b, c.cgroups, dir)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.CgroupDetail(dir); err != nil {
			b.Fatal(err)
		}
		p, err := c.Processes(dir)
		if err != nil {
			b.Fatal(err)
		}
		if p.Count != 1 || !p.FilesKnown {
			b.Fatalf("processes %+v, want the one started", p)
		}
	}
}

// BenchmarkReadFakeV1 and V2 measure the parsing alone, on a fake tree of
// ordinary files (no root needed).
func BenchmarkReadFakeV1(b *testing.B) { benchFake(b, v1Tree("104857600")) }
func BenchmarkReadFakeV2(b *testing.B) { benchFake(b, v2Tree("max")) }

func benchFake(b *testing.B, tree map[string]string) {
	root := b.TempDir()
	writeTree(b, root, tree)
	r := NewReader(root, time.Now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read("/pod/ctr"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLayerWalk is the cost of a cache miss on a small upper
// directory (a few hundred files).
func BenchmarkLayerWalk(b *testing.B) {
	upper := b.TempDir()
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("d%d/f%d", i%10, i)] = "x"
	}
	writeTree(b, upper, files)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := walkUsage(upper); err != nil {
			b.Fatal(err)
		}
	}
}
