package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

// hog20MB holds 20 MB of anonymous memory in a shell variable; the last
// command uses it, so the shell cannot exec sleep and drop it.
var hog20MB = []string{"sh", "-c", `x=$(head -c 20000000 /dev/zero | tr '\0' a); sleep 3600; echo ${#x}`}

const workingSetFloor = 19_000_000

func (e *env) statsOfContainer(id string) *runtimeapi.ContainerStats {
	e.t.Helper()
	resp, err := e.rt.ContainerStats(ctx(e.t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		e.t.Fatalf("ContainerStats %s: %v", id, err)
	}
	return resp.GetStats()
}

func (e *env) statsList(f *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	e.t.Helper()
	resp, err := e.rt.ListContainerStats(ctx(e.t), &runtimeapi.ListContainerStatsRequest{Filter: f})
	if err != nil {
		e.t.Fatalf("ListContainerStats: %v", err)
	}
	return resp.GetStats()
}

func (e *env) statsOfPod(id string) *runtimeapi.PodSandboxStats {
	e.t.Helper()
	resp, err := e.rt.PodSandboxStats(ctx(e.t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		e.t.Fatalf("PodSandboxStats %s: %v", id, err)
	}
	return resp.GetStats()
}

func (e *env) statsPods(f *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	e.t.Helper()
	resp, err := e.rt.ListPodSandboxStats(ctx(e.t), &runtimeapi.ListPodSandboxStatsRequest{Filter: f})
	if err != nil {
		e.t.Fatalf("ListPodSandboxStats: %v", err)
	}
	return resp.GetStats()
}

// withOwnCgroupParent gives the pod a cgroup parent of its own below top,
// named as kubelet names pod cgroups (pod<uid>).
func withOwnCgroupParent(top string) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = top + "/pod" + c.Metadata.Uid }
}

// A container holding 20 MB shows a working set of at least 19 MB, in
// ContainerStats and in its pod's stats, whether the pod is measured
// through a cgroup parent of its own or as the sum of its cgroups.
func TestStatsMemoryWorkingSet(t *testing.T) {
	top := fmt.Sprintf("/berth-e2e-stats-%d", time.Now().UnixNano())
	t.Cleanup(func() { // after the daemon's cleanup, which sweeps berth's parents
		for _, h := range []string{"memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "devices", "freezer", "systemd", ""} {
			syscall.Rmdir(filepath.Join("/sys/fs/cgroup", h, top))
		}
	})
	e := newEnv(t)
	for _, tt := range []struct {
		name string
		opts []podOpt
	}{
		{"shared parent", nil},
		{"own parent", []podOpt{withOwnCgroupParent(top)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pod := e.podConfig("stats-mem", tt.opts...)
			podID := e.runPod(pod)
			id := e.start(podID, pod, containerConfig("hog", hog20MB, withMemoryLimit(200<<20)))

			var st *runtimeapi.ContainerStats
			// The shell builds the string through a pipe: wait until it
			// holds it all, in anonymous memory.
			testutil.Eventually(t, "working set and rss of 19 MB", func() bool {
				st = e.statsOfContainer(id)
				m := st.GetMemory()
				return m.GetWorkingSetBytes().GetValue() >= workingSetFloor && m.GetRssBytes().GetValue() >= workingSetFloor
			})
			m := st.GetMemory()
			if m.GetTimestamp() <= 0 || m.GetUsageBytes().GetValue() < m.GetWorkingSetBytes().GetValue() {
				t.Errorf("memory %v: want a timestamp and usage ≥ working set", m)
			}
			if m.GetPageFaults().GetValue() == 0 {
				t.Errorf("no page faults counted: %v", m)
			}
			if got, want := m.GetAvailableBytes().GetValue(), uint64(200<<20)-m.GetWorkingSetBytes().GetValue(); got != want {
				t.Errorf("available bytes %d, want limit − working set = %d", got, want)
			}
			if a := st.GetAttributes(); a.GetId() != id || a.GetMetadata().GetName() != "hog" || a.GetLabels()["container"] != "hog" {
				t.Errorf("attributes %v", a)
			}

			ps := e.statsOfPod(podID)
			linux := ps.GetLinux()
			if ws := linux.GetMemory().GetWorkingSetBytes().GetValue(); ws < workingSetFloor {
				t.Errorf("pod working set %d, want ≥ %d", ws, workingSetFloor)
			}
			// pause, sh and sleep at least
			if n := linux.GetProcess().GetProcessCount().GetValue(); n < 3 {
				t.Errorf("pod process count %d, want ≥ 3", n)
			}
			if len(linux.GetContainers()) != 1 || linux.GetContainers()[0].GetAttributes().GetId() != id {
				t.Errorf("pod containers %v, want just %s", linux.GetContainers(), id)
			}
			if ps.GetAttributes().GetId() != podID || ps.GetAttributes().GetMetadata().GetUid() != pod.GetMetadata().GetUid() {
				t.Errorf("pod attributes %v", ps.GetAttributes())
			}
			e.removePod(podID)
		})
	}
}

// A busy container's CPU usage grows from one ListContainerStats call to
// the next, and a later call reports a usage rate.
func TestStatsCPUUsage(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("stats-cpu")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("spin", []string{"sh", "-c", "while :; do :; done"}))

	usage := func() *runtimeapi.CpuUsage {
		t.Helper()
		list := e.statsList(&runtimeapi.ContainerStatsFilter{Id: id})
		if len(list) != 1 {
			t.Fatalf("ListContainerStats by ID: %d entries", len(list))
		}
		return list[0].GetCpu()
	}
	first := usage()
	if first.GetTimestamp() <= 0 || first.GetUsageCoreNanoSeconds() == nil {
		t.Fatalf("first CPU reading %v", first)
	}
	testutil.Eventually(t, "CPU usage to grow", func() bool {
		return usage().GetUsageCoreNanoSeconds().GetValue() > first.GetUsageCoreNanoSeconds().GetValue()
	})
	testutil.Eventually(t, "a CPU usage rate", func() bool {
		return usage().GetUsageNanoCores().GetValue() > 0
	})
	// The pod's own CPU includes the spinning container's.
	testutil.Eventually(t, "the pod's CPU usage rate", func() bool {
		return e.statsOfPod(podID).GetLinux().GetCpu().GetUsageNanoCores().GetValue() > 0
	})
}

// A file written into the container's root file system shows up in its
// writable layer's usage.
func TestStatsWritableLayer(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("stats-layer")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("writer", []string{"sleep", "3600"}))

	before := e.statsOfContainer(id).GetWritableLayer()
	if before.GetFsId().GetMountpoint() == "" || before.GetTimestamp() <= 0 || before.GetInodesUsed() == nil {
		t.Fatalf("writable layer %v: want a mount point, a timestamp and inodes", before)
	}
	e.mustExec(id, "dd", "if=/dev/zero", "of=/stats-file", "bs=1048576", "count=8")
	const grown = 8 << 20
	testutil.Eventually(t, "the writable layer to hold the 8 MiB file", func() bool {
		wl := e.statsOfContainer(id).GetWritableLayer()
		return wl.GetUsedBytes().GetValue() >= before.GetUsedBytes().GetValue()+grown &&
			wl.GetInodesUsed().GetValue() > before.GetInodesUsed().GetValue()
	})
}

// After traffic between two pods, the server pod's stats show bytes
// received and sent on eth0, next to its containers.
func TestStatsPodNetwork(t *testing.T) {
	e := newEnv(t)
	a := e.podConfig("stats-web")
	aID := e.runPod(a)
	web := e.start(aID, a, containerConfig("web", serveCmd("8080", "hello-stats")))
	b := e.podConfig("stats-client")
	bID := e.runPod(b)
	client := e.start(bID, b, containerConfig("client", []string{"sleep", "3600"}))
	e.fetch(client, "http://"+e.podIP(aID)+":8080/", "hello-stats")

	ps := e.statsOfPod(aID)
	nw := ps.GetLinux().GetNetwork()
	eth0 := nw.GetDefaultInterface()
	if eth0.GetName() != "eth0" || nw.GetTimestamp() <= 0 {
		t.Fatalf("network %v: want eth0 as the default interface, and a timestamp", nw)
	}
	if eth0.GetRxBytes().GetValue() == 0 || eth0.GetTxBytes().GetValue() == 0 || eth0.GetRxErrors() == nil || eth0.GetTxErrors() == nil {
		t.Errorf("eth0 %v: want bytes received and sent, and error counters", eth0)
	}
	for _, i := range nw.GetInterfaces() {
		if i.GetName() == "lo" {
			t.Errorf("loopback reported: %v", i)
		}
	}
	if cs := ps.GetLinux().GetContainers(); len(cs) != 1 || cs[0].GetAttributes().GetId() != web {
		t.Errorf("pod containers %v, want just %s", cs, web)
	}

	// The pod-level network shows up in the metrics too.
	resp, err := e.rt.ListPodSandboxMetrics(ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var rx uint64
	for _, pm := range resp.GetPodMetrics() {
		for _, m := range pm.GetMetrics() {
			if pm.GetPodSandboxId() == aID && m.GetName() == "container_network_receive_bytes_total" && slices.Contains(m.GetLabelValues(), "eth0") {
				rx = m.GetValue().GetValue()
			}
		}
	}
	if rx == 0 {
		t.Errorf("no container_network_receive_bytes_total for eth0 of pod %s", aID)
	}
}

// The filters select by container ID (or prefix), pod sandbox ID and
// labels; containers not running report their attributes.
func TestStatsFilters(t *testing.T) {
	e := newEnv(t)
	f := e.filterFixture("stats")
	a, b, running, created, other, exited := f.a, f.b, f.running, f.created, f.other, f.exited

	ids := func(list []*runtimeapi.ContainerStats) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.GetAttributes().GetId())
		}
		sort.Strings(out)
		return out
	}
	want := func(x ...string) []string { sort.Strings(x); return x }
	for _, tt := range []struct {
		name   string
		filter *runtimeapi.ContainerStatsFilter
		want   []string
	}{
		{"all", nil, want(running, created, other, exited)},
		{"by id", &runtimeapi.ContainerStatsFilter{Id: running}, want(running)},
		{"by id prefix", &runtimeapi.ContainerStatsFilter{Id: created[:12]}, want(created)},
		{"by sandbox", &runtimeapi.ContainerStatsFilter{PodSandboxId: a}, want(running, created)},
		{"by label", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"container": "run"}}, want(running, other)},
		{"label and sandbox", &runtimeapi.ContainerStatsFilter{PodSandboxId: b, LabelSelector: map[string]string{"container": "run"}}, want(other)},
		{"no match", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"container": "nope"}}, nil},
	} {
		if got := ids(e.statsList(tt.filter)); !equal(got, tt.want) {
			t.Errorf("ListContainerStats %s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	// Not started: no cgroup yet, so attributes and writable layer only.
	st := e.statsOfContainer(created)
	if st.GetAttributes().GetId() != created || st.GetAttributes().GetMetadata().GetName() != "made" || st.GetCpu() != nil {
		t.Errorf("created container's stats %v: want attributes and no CPU", st)
	}
	if st := e.statsOfContainer(exited); st.GetAttributes().GetId() != exited {
		t.Errorf("exited container's stats %v: want its attributes", st)
	}

	podIDs := func(list []*runtimeapi.PodSandboxStats) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.GetAttributes().GetId())
		}
		sort.Strings(out)
		return out
	}
	for _, tt := range []struct {
		name   string
		filter *runtimeapi.PodSandboxStatsFilter
		want   []string
	}{
		{"all", nil, want(a, b)},
		{"by id", &runtimeapi.PodSandboxStatsFilter{Id: b}, want(b)},
		{"by id prefix", &runtimeapi.PodSandboxStatsFilter{Id: a[:12]}, want(a)},
		{"by label", &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "stats-a"}}, want(a)},
		{"no match", &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "nope"}}, nil},
	} {
		if got := podIDs(e.statsPods(tt.filter)); !equal(got, tt.want) {
			t.Errorf("ListPodSandboxStats %s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if cs := e.statsOfPod(b).GetLinux().GetContainers(); len(cs) != 2 {
		t.Errorf("pod b lists %d containers, want 2 (running and exited)", len(cs))
	}

	const unknown = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	_, err := e.rt.ContainerStats(ctx(t), &runtimeapi.ContainerStatsRequest{ContainerId: unknown})
	wantCode(t, "ContainerStats of an unknown ID", err, codes.NotFound, unknown)
	_, err = e.rt.ContainerStats(ctx(t), &runtimeapi.ContainerStatsRequest{})
	wantCode(t, "ContainerStats without an ID", err, codes.InvalidArgument, "ID")
	_, err = e.rt.PodSandboxStats(ctx(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: unknown})
	wantCode(t, "PodSandboxStats of an unknown ID", err, codes.NotFound, unknown)
}

// Every metric series names a described metric and has a value for each
// of its label keys; a running container has its memory and CPU series.
func TestStatsMetrics(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("stats-metrics")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("hog", hog20MB))

	descs, err := e.rt.ListMetricDescriptors(ctx(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range descs.GetDescriptors() {
		keys[d.GetName()] = len(d.GetLabelKeys())
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_usage_bytes",
		"container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_spec_memory_limit_bytes"} {
		if _, ok := keys[name]; !ok {
			t.Errorf("%s is not described", name)
		}
	}

	var ws uint64
	testutil.Eventually(t, "the container's working set metric", func() bool {
		resp, err := e.rt.ListPodSandboxMetrics(ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range resp.GetPodMetrics() {
			all := pm.GetMetrics()
			for _, cm := range pm.GetContainerMetrics() {
				all = append(all, cm.GetMetrics()...)
				for _, m := range cm.GetMetrics() {
					if cm.GetContainerId() == id && m.GetName() == "container_memory_working_set_bytes" {
						ws = m.GetValue().GetValue()
						if m.GetMetricType() != runtimeapi.MetricType_GAUGE {
							t.Errorf("%s is a %v, want a gauge", m.GetName(), m.GetMetricType())
						}
					}
					if m.GetName() == "container_cpu_usage_seconds_total" && m.GetMetricType() != runtimeapi.MetricType_COUNTER {
						t.Errorf("%s is a %v, want a counter", m.GetName(), m.GetMetricType())
					}
				}
			}
			for _, m := range all {
				if n, ok := keys[m.GetName()]; !ok || n != len(m.GetLabelValues()) {
					t.Fatalf("series %s with labels %v does not match its descriptor", m.GetName(), m.GetLabelValues())
				}
			}
		}
		return ws >= workingSetFloor
	})
}
