package server

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

// benchHierarchies are the cgroup directories a bench cgroup is made in.
func benchHierarchies() []string {
	if cgroup.Unified() {
		return []string{cgroup.Mountpoint}
	}
	var out []string
	for _, h := range []string{"memory", "cpu", "cpuacct", "pids", "blkio"} {
		if _, err := os.Stat(filepath.Join(cgroup.Mountpoint, h)); err == nil {
			out = append(out, filepath.Join(cgroup.Mountpoint, h))
		}
	}
	return out
}

// benchCgroupWithProcess makes the cgroup dir (relative) in every
// hierarchy with a sleeping process in it, and returns the process.
func benchCgroupWithProcess(b *testing.B, dir string) *os.Process {
	b.Helper()
	for _, h := range benchHierarchies() {
		p := filepath.Join(h, dir)
		if err := os.Mkdir(p, 0o755); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.Remove(p) })
	}
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for _, h := range benchHierarchies() {
		if err := os.WriteFile(filepath.Join(h, dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return cmd.Process
}

// startTime is field 22 of /proc/<pid>/stat, which a live shim record
// must match.
func startTime(b *testing.B, pid int) uint64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkListPodSandboxMetrics is a scrape of 100 ready pods, each a
// pause and one container cgroup with a process in it under berth's
// default shared parent, with the pod's network read: what kubelet's
// /metrics/cadvisor costs berth with real cgroups. It needs root.
func BenchmarkListPodSandboxMetrics(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create cgroups")
	}
	const pods = 100
	parent := fmt.Sprintf("/berth-metrics-bench-%d", os.Getpid())
	for _, h := range benchHierarchies() {
		p := filepath.Join(h, parent)
		if err := os.Mkdir(p, 0o755); err != nil {
			b.Skipf("cannot create a cgroup: %v", err)
		}
		b.Cleanup(func() { os.Remove(p) })
	}
	root := b.TempDir()
	st, err := store.New(root)
	if err != nil {
		b.Fatal(err)
	}
	self := shim.Process{Pid: os.Getpid(), StartTime: startTime(b, os.Getpid())}
	for i := range pods {
		sbID, ctrID := fmt.Sprintf("sb%03d", i), fmt.Sprintf("ctr%03d", i)
		pause := benchCgroupWithProcess(b, filepath.Join(parent, sbID))
		benchCgroupWithProcess(b, filepath.Join(parent, ctrID))

		sb := store.NewSandbox(st.SandboxDir(sbID), store.SandboxMeta{ID: sbID, CgroupParent: parent,
			NetNS: fmt.Sprintf("/proc/%d/ns/net", pause.Pid)})
		sb.Meta.Config.Msg = &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: sbID, Namespace: "bench", Uid: sbID}}
		if err := os.MkdirAll(sb.Dir, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := sb.Commit(store.SandboxStatus{State: store.SandboxReady, Pid: pause.Pid, Shim: self}); err != nil {
			b.Fatal(err)
		}
		st.AddSandbox(sb)

		c := store.NewContainer(st.ContainerDir(ctrID), store.ContainerMeta{ID: ctrID, SandboxID: sbID, CgroupsPath: filepath.Join(parent, ctrID)})
		c.Meta.Config.Msg = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		if err := os.MkdirAll(filepath.Join(c.Dir, writableLayerDir, "etc"), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := c.Commit(store.ContainerStatus{State: store.ContainerRunning, StartedAt: 1}); err != nil {
			b.Fatal(err)
		}
		st.AddContainer(c)
	}
	collector := stats.New(stats.Config{})
	for _, bb := range []struct {
		name  string
		usage usageReader
	}{
		{"all", collector},
		// What the cgroup samples, layers and networks alone cost (as in
		// ListPodSandboxStats): the reader without the optional reads.
		{"samples-only", struct{ usageReader }{collector}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			s := &Service{cfg: Config{CgroupDriver: cgroup.Cgroupfs}, store: st, usage: bb.usage,
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := s.ListPodSandboxMetrics(b.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
				if err != nil {
					b.Fatal(err)
				}
				if n := len(resp.GetPodMetrics()); n != pods {
					b.Fatalf("%d pods, want %d", n, pods)
				}
			}
		})
	}
}
