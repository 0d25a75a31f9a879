package server

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

// cadvisorMetrics are the metrics critest (cri-tools v1.36,
// pkg/validate/pod.go) expects a runtime to describe and report, less
// those it lists as not yet implemented by all runtimes (hugetlb,
// pressure, spec cpu quota and memory reservation, ulimits).
var cadvisorMetrics = []string{
	"container_blkio_device_usage_total", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total", "container_cpu_system_seconds_total", "container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total", "container_file_descriptors", "container_fs_inodes_free", "container_fs_inodes_total",
	"container_fs_limit_bytes", "container_fs_reads_bytes_total", "container_fs_reads_total", "container_fs_usage_bytes",
	"container_fs_writes_bytes_total", "container_fs_writes_total", "container_last_seen", "container_memory_cache",
	"container_memory_failcnt", "container_memory_failures_total", "container_memory_kernel_usage", "container_memory_mapped_file",
	"container_memory_max_usage_bytes", "container_memory_rss", "container_memory_swap", "container_memory_usage_bytes",
	"container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total", "container_network_receive_packets_total",
	"container_network_transmit_bytes_total", "container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total", "container_network_transmit_packets_total", "container_oom_events_total",
	"container_processes", "container_sockets", "container_spec_cpu_period", "container_spec_cpu_shares",
	"container_spec_memory_limit_bytes", "container_spec_memory_swap_limit_bytes", "container_start_time_seconds",
	"container_threads", "container_threads_max",
}

func describe(t *testing.T) map[string][]string {
	t.Helper()
	resp, err := (&Service{}).ListMetricDescriptors(t.Context(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range resp.GetDescriptors() {
		if _, dup := keys[d.GetName()]; dup {
			t.Errorf("%s described twice", d.GetName())
		}
		if d.GetHelp() == "" {
			t.Errorf("%s has no help", d.GetName())
		}
		if !slices.IsSorted(d.GetLabelKeys()) || len(slices.Compact(slices.Clone(d.GetLabelKeys()))) != len(d.GetLabelKeys()) {
			t.Errorf("%s: label keys %v are not sorted and distinct", d.GetName(), d.GetLabelKeys())
		}
		keys[d.GetName()] = d.GetLabelKeys()
	}
	return keys
}

func TestMetricDescriptors(t *testing.T) {
	keys := describe(t)
	for _, name := range cadvisorMetrics {
		if _, ok := keys[name]; !ok {
			t.Errorf("%s is not described", name)
		}
	}
	// cAdvisor's own labels, which dashboards select on.
	for name, want := range map[string][]string{
		"container_memory_failures_total":       {"container", "failure_type", "id", "image", "name", "namespace", "pod", "scope"},
		"container_blkio_device_usage_total":    {"container", "device", "id", "image", "major", "minor", "name", "namespace", "operation", "pod"},
		"container_fs_usage_bytes":              {"container", "device", "id", "image", "name", "namespace", "pod"},
		"container_network_receive_bytes_total": {"container", "id", "image", "interface", "name", "namespace", "pod"},
		"container_processes":                   {"container", "id", "image", "name", "namespace", "pod"},
	} {
		if !slices.Equal(keys[name], want) {
			t.Errorf("%s: label keys %v, want %v", name, keys[name], want)
		}
	}
}

func u64p(v uint64) *uint64 { return &v }

// fullReadings is a pod and its container with every part known.
func fullReadings() (metricReading, []metricReading) {
	at := time.Unix(100, 0)
	sample := &stats.Sample{Time: at, CPU: stats.CPU{UsageNanos: 3_500_000_000},
		Memory: stats.Memory{Usage: 10, SwapKnown: true, PageFaults: 40, MajorPageFaults: 4, OwnPageFaults: 30, OwnMajorPageFaults: 3}}
	detail := &stats.Detail{KernelMemory: u64p(5), OOMKills: 1,
		IO:  []stats.DeviceIO{{Major: 254, Minor: 0, Device: "/dev/vda", ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
		Own: &stats.OwnDetail{CFS: &stats.CFS{Periods: 10, ThrottledPeriods: 2, ThrottledNanos: 2_500_000_000}, MaxMemoryUsage: u64p(20), TasksLimit: 100}}
	procs := &stats.Processes{Count: 2, FileDescriptors: 7, Sockets: 1, FilesKnown: true}
	pod := metricReading{id: "sb", labels: []string{"", "sb", "", "web", "ns", "web"}, cgroup: sample, detail: detail, procs: procs,
		network: &stats.NetworkSample{Interfaces: []stats.Interface{{Name: "eth0", RxBytes: 7}}}}
	ctr := metricReading{id: "c1", labels: []string{"app", "c1", "busybox", "app", "ns", "web"}, cgroup: sample, detail: detail, procs: procs,
		layer:   &stats.LayerUsage{Device: "/dev/vda", Bytes: 4096, FSBytes: 1 << 30, FSInodes: 1000, FSInodesFree: 900},
		spec:    specOf(&runtimeapi.LinuxContainerResources{CpuPeriod: 50_000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 128 << 20}),
		started: time.Unix(50, 0).UnixNano()}
	return pod, []metricReading{ctr}
}

// Every series names a described metric and carries one value per label
// key, as kubelet's CRI metrics collector requires, and every described
// metric has a series when everything is known.
func TestPodMetricsMatchDescriptors(t *testing.T) {
	keys := describe(t)
	m := podMetrics(fullReadings())
	if m.GetPodSandboxId() != "sb" || len(m.GetContainerMetrics()) != 1 || m.GetContainerMetrics()[0].GetContainerId() != "c1" {
		t.Fatalf("pod %q with containers %v", m.GetPodSandboxId(), m.GetContainerMetrics())
	}
	all := m.GetMetrics()
	for _, cm := range m.GetContainerMetrics() {
		all = append(all, cm.GetMetrics()...)
	}
	seen := map[string]bool{}
	for _, series := range all {
		k, ok := keys[series.GetName()]
		if !ok {
			t.Errorf("%s is not described", series.GetName())
			continue
		}
		if len(series.GetLabelValues()) != len(k) {
			t.Errorf("%s: %d label values for %d keys: %v", series.GetName(), len(series.GetLabelValues()), len(k), series.GetLabelValues())
		}
		seen[series.GetName()] = true
	}
	for name := range keys {
		if !seen[name] {
			t.Errorf("%s described but never reported", name)
		}
	}
}

// labeled finds the container's series of name whose labels include all
// of want (key → value).
func labeled(t *testing.T, ms []*runtimeapi.Metric, keys map[string][]string, name string, want map[string]string) *runtimeapi.Metric {
	t.Helper()
next:
	for _, m := range ms {
		if m.GetName() != name {
			continue
		}
		for i, k := range keys[name] {
			if v, ok := want[k]; ok && m.GetLabelValues()[i] != v {
				continue next
			}
		}
		return m
	}
	t.Errorf("no %s series with labels %v", name, want)
	return nil
}

func TestContainerMetricValues(t *testing.T) {
	keys := describe(t)
	ms := podMetrics(fullReadings()).GetContainerMetrics()[0].GetMetrics()
	common := map[string]string{"container": "app", "id": "c1", "image": "busybox", "name": "app", "namespace": "ns", "pod": "web"}
	tests := []struct {
		name   string
		labels map[string]string
		want   uint64
	}{
		{"container_cpu_usage_seconds_total", nil, 3},
		{"container_cpu_cfs_periods_total", nil, 10},
		{"container_cpu_cfs_throttled_periods_total", nil, 2},
		{"container_cpu_cfs_throttled_seconds_total", nil, 2},
		{"container_memory_failures_total", map[string]string{"failure_type": "pgfault", "scope": "container"}, 30},
		{"container_memory_failures_total", map[string]string{"failure_type": "pgmajfault", "scope": "container"}, 3},
		{"container_memory_failures_total", map[string]string{"failure_type": "pgfault", "scope": "hierarchy"}, 40},
		{"container_memory_failures_total", map[string]string{"failure_type": "pgmajfault", "scope": "hierarchy"}, 4},
		{"container_memory_kernel_usage", nil, 5},
		{"container_memory_max_usage_bytes", nil, 20},
		{"container_oom_events_total", nil, 1},
		{"container_threads_max", nil, 100},
		{"container_processes", nil, 2},
		{"container_file_descriptors", nil, 7},
		{"container_sockets", nil, 1},
		{"container_fs_usage_bytes", map[string]string{"device": "/dev/vda"}, 4096},
		{"container_fs_limit_bytes", map[string]string{"device": "/dev/vda"}, 1 << 30},
		{"container_fs_inodes_total", map[string]string{"device": "/dev/vda"}, 1000},
		{"container_fs_inodes_free", map[string]string{"device": "/dev/vda"}, 900},
		{"container_fs_reads_bytes_total", map[string]string{"device": "/dev/vda"}, 4096},
		{"container_fs_writes_total", map[string]string{"device": "/dev/vda"}, 2},
		{"container_blkio_device_usage_total", map[string]string{"device": "/dev/vda", "major": "254", "minor": "0", "operation": "Write"}, 8192},
		{"container_spec_cpu_period", nil, 50_000},
		{"container_spec_cpu_shares", nil, 512},
		{"container_spec_memory_swap_limit_bytes", nil, 128 << 20},
		{"container_start_time_seconds", nil, 50},
		{"container_last_seen", nil, 100},
	}
	for _, tt := range tests {
		want := map[string]string{}
		for k, v := range common {
			want[k] = v
		}
		for k, v := range tt.labels {
			want[k] = v
		}
		if m := labeled(t, ms, keys, tt.name, want); m != nil && m.GetValue().GetValue() != tt.want {
			t.Errorf("%s%v = %d, want %d", tt.name, tt.labels, m.GetValue().GetValue(), tt.want)
		}
	}
}

// What is unknown is left out, not reported as 0.
func TestUnknownMetricsLeftOut(t *testing.T) {
	pod, containers := fullReadings()
	c := &containers[0]
	detail := *c.detail
	detail.KernelMemory = nil
	detail.Own = &stats.OwnDetail{}
	c.detail = &detail
	c.procs = &stats.Processes{Count: 500}
	m := podMetrics(pod, containers)
	for _, s := range m.GetContainerMetrics()[0].GetMetrics() {
		switch s.GetName() {
		case "container_memory_kernel_usage", "container_memory_max_usage_bytes", "container_cpu_cfs_periods_total",
			"container_file_descriptors", "container_sockets":
			t.Errorf("%s reported though unknown", s.GetName())
		}
	}
	for _, s := range m.GetMetrics() {
		switch s.GetName() {
		case "container_spec_cpu_shares", "container_fs_usage_bytes", "container_start_time_seconds":
			t.Errorf("pod series %s: a pod has no such thing", s.GetName())
		}
	}
}

func TestSpecOf(t *testing.T) {
	tests := []struct {
		name string
		r    *runtimeapi.LinuxContainerResources
		want containerSpec
	}{
		{"no resources: the kernel's defaults, no swap limit", nil, containerSpec{cpuPeriod: 100_000, cpuShares: 1024}},
		{"as asked", &runtimeapi.LinuxContainerResources{CpuPeriod: 20_000, CpuShares: 2, MemoryLimitInBytes: 1 << 20, MemorySwapLimitInBytes: 2 << 20},
			containerSpec{cpuPeriod: 20_000, cpuShares: 2, memorySwapLimit: 2 << 20}},
		{"swap without a memory limit is not applied", &runtimeapi.LinuxContainerResources{MemorySwapLimitInBytes: 2 << 20},
			containerSpec{cpuPeriod: 100_000, cpuShares: 1024}},
		{"a memory limit alone leaves swap unlimited", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20},
			containerSpec{cpuPeriod: 100_000, cpuShares: 1024}},
	}
	for _, tt := range tests {
		if got := *specOf(tt.r); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestJoinLabels(t *testing.T) {
	common := []string{"C", "I", "IM", "N", "NS", "P"} // values of metricLabels
	tests := []struct {
		keys, own, want []string
	}{
		{nil, nil, common},
		{[]string{"device"}, []string{"D"}, []string{"C", "D", "I", "IM", "N", "NS", "P"}},
		{[]string{"failure_type", "scope"}, []string{"F", "S"}, []string{"C", "F", "I", "IM", "N", "NS", "P", "S"}},
		{[]string{"a", "zz"}, []string{"A", "Z"}, []string{"A", "C", "I", "IM", "N", "NS", "P", "Z"}},
	}
	for _, tt := range tests {
		if got := joinLabels(tt.keys, common, tt.own); !slices.Equal(got, tt.want) {
			t.Errorf("joinLabels(%v) = %v, want %v", tt.keys, got, tt.want)
		}
	}
}

// fakeMetricsUsage answers the optional metric reads from maps keyed by
// cgroup directory; what is missing is errdefs.ErrNotFound.
type fakeMetricsUsage struct {
	usageReader // not called by metricReadings
	details     map[string]stats.Detail
	procs       map[string]stats.Processes
}

func (f *fakeMetricsUsage) CgroupDetail(dir string) (stats.Detail, error) {
	d, ok := f.details[dir]
	if !ok {
		return stats.Detail{}, errdefs.NotFound("no cgroup %s", dir)
	}
	return d, nil
}

func (f *fakeMetricsUsage) Processes(dir string) (stats.Processes, error) {
	p, ok := f.procs[dir]
	if !ok {
		return stats.Processes{}, errdefs.NotFound("no cgroup %s", dir)
	}
	return p, nil
}

func TestMetricReadings(t *testing.T) {
	own := func(limit uint64) *stats.OwnDetail { return &stats.OwnDetail{TasksLimit: limit} }
	usage := &fakeMetricsUsage{
		details: map[string]stats.Detail{
			"/kubepods/pod-u":       {OOMKills: 100, Own: own(1000)},
			"/kubepods/pod-u/sb":    {OOMKills: 1, KernelMemory: u64p(1), Own: own(1)},
			"/kubepods/pod-u/c1":    {OOMKills: 2, KernelMemory: u64p(2), Own: own(2)},
			"/kubepods/pod-u/c-new": {OOMKills: 4, Own: own(4)},
		},
		procs: map[string]stats.Processes{
			"/kubepods/pod-u/sb": {Count: 1, FileDescriptors: 3, FilesKnown: true},
			"/kubepods/pod-u/c1": {Count: 2, FileDescriptors: 10, Sockets: 2, FilesKnown: true},
		},
	}
	s := &Service{cfg: Config{CgroupDriver: cgroup.Cgroupfs}, usage: usage, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sb := store.NewSandbox(t.TempDir(), store.SandboxMeta{ID: "sb", CgroupParent: "/kubepods/pod-u"})
	sb.Meta.Config.Msg = &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u"}}
	container := func(id string) *store.Container {
		c := store.NewContainer(t.TempDir(), store.ContainerMeta{ID: id, SandboxID: "sb", CgroupsPath: "/kubepods/pod-u/" + id})
		c.Meta.Config.Msg = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: id},
			Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{CpuShares: 256}}}
		return c
	}
	sample := &stats.Sample{Time: time.Unix(100, 0)}
	u := podUsage{
		cgroup:     sample,
		containers: []*store.Container{container("c1"), container("c-new")},
		usage:      []containerUsage{{cgroup: sample}, {}}, // c-new has no cgroup yet
	}

	t.Run("summed pod", func(t *testing.T) {
		pod, cs := s.metricReadings(sb, u)
		if len(cs) != 1 || cs[0].id != "c1" {
			t.Fatalf("containers %+v, want c1 alone", cs)
		}
		if cs[0].spec == nil || cs[0].spec.cpuShares != 256 {
			t.Errorf("c1 spec %+v, want 256 shares", cs[0].spec)
		}
		if d := cs[0].detail; d == nil || d.OOMKills != 2 || d.Own.TasksLimit != 2 {
			t.Errorf("c1 detail %+v", d)
		}
		d := pod.detail
		if d == nil || d.OOMKills != 3 || d.KernelMemory == nil || *d.KernelMemory != 3 || d.Own != nil {
			t.Errorf("pod detail %+v, want pause+c1 without own parts", d)
		}
		if p := pod.procs; p == nil || *p != (stats.Processes{Count: 3, FileDescriptors: 13, Sockets: 2, FilesKnown: true}) {
			t.Errorf("pod processes %+v", p)
		}
	})
	t.Run("pod measured through its parent", func(t *testing.T) {
		u := u
		u.cgroupDir = "/kubepods/pod-u"
		pod, _ := s.metricReadings(sb, u)
		if d := pod.detail; d == nil || d.OOMKills != 100 || d.Own == nil || d.Own.TasksLimit != 1000 {
			t.Errorf("pod detail %+v, want the parent's", d)
		}
		if p := pod.procs; p == nil || p.Count != 3 {
			t.Errorf("pod processes %+v, want pause+c1", p)
		}
	})
	t.Run("nothing of the pod exists", func(t *testing.T) {
		pod, cs := s.metricReadings(sb, podUsage{containers: u.containers, usage: []containerUsage{{}, {}}})
		if pod.detail != nil || pod.procs != nil || len(cs) != 0 {
			t.Errorf("pod %+v, containers %v: want nothing", pod, cs)
		}
	})
	t.Run("the pod unreadable, its container not", func(t *testing.T) {
		u := u
		u.cgroup = nil
		pod, cs := s.metricReadings(sb, u)
		if pod.detail != nil || pod.procs != nil {
			t.Errorf("pod %+v: want no pod detail", pod)
		}
		if len(cs) != 1 || cs[0].detail == nil || cs[0].procs == nil {
			t.Errorf("containers %+v, want c1 with its detail and processes", cs)
		}
	})
}
