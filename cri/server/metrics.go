package server

import (
	"context"
	"errors"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

// berth serves cAdvisor's container metrics through the CRI (kubelet's
// /metrics/cadvisor with PodAndContainerStatsFromCRI), with cAdvisor's
// names, types and label names. Every series has these labels:
//
//	container  the container's name; "" on the pod's own series
//	id         the container's (or, on the pod's series, sandbox's) ID
//	image      the container's image as it was asked for; "" for the pod
//	name       the container's name, or the pod's on its series
//	namespace, pod
//
// and some have their own besides (device, interface, …); a series'
// label keys are in alphabetical order, as cAdvisor writes them.
//
// CRI metric values are unsigned integers, so the "_seconds" series are
// whole seconds (usage_core_nano_seconds in ContainerStats has the
// precision).
var metricLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

// cgroupDetailReader and processCounter are what ListPodSandboxMetrics
// reads beyond the stats verbs' usageReader; cri/stats.Collector has
// both. Without them, the series they feed are left out.
type cgroupDetailReader interface {
	// CgroupDetail reads the counters of the cgroup at dir that a
	// Sample leaves out; errdefs.ErrNotFound when it does not exist.
	CgroupDetail(dir string) (stats.Detail, error)
}

type processCounter interface {
	// Processes counts the processes in the cgroup at dir itself and the
	// files they hold open, at a bounded cost; errdefs.ErrNotFound when
	// the cgroup does not exist.
	Processes(dir string) (stats.Processes, error)
}

var (
	_ cgroupDetailReader = (*stats.Collector)(nil)
	_ processCounter     = (*stats.Collector)(nil)
)

// metricReading is what one scrape learned of a pod or a container. nil
// parts are unknown (or do not apply), and the series they feed are left
// out.
type metricReading struct {
	id      string
	labels  []string // values of metricLabels
	cgroup  *stats.Sample
	detail  *stats.Detail
	procs   *stats.Processes
	layer   *stats.LayerUsage    // containers only
	spec    *containerSpec       // containers only
	network *stats.NetworkSample // pods only
	started int64                // containers only: start time, ns; 0 before
}

// containerSpec is what cAdvisor reports of a container's resources as
// container_spec_*.
type containerSpec struct {
	cpuPeriod, cpuShares uint64
	memorySwapLimit      uint64 // memory plus swap, as in the CRI; 0 when none
}

// The kernel's values for what the CRI leaves unset: runc then does not
// write cpu.cfs_period_us (cpu.max) or cpu.shares (cpu.weight).
const (
	defaultCPUPeriod = 100_000 // µs
	defaultCPUShares = 1024
)

// specOf derives the reported spec from a container's current CRI
// resources (nil: none). Swap is limited only together with memory (see
// oci.applyResources).
func specOf(r *runtimeapi.LinuxContainerResources) *containerSpec {
	spec := &containerSpec{cpuPeriod: defaultCPUPeriod, cpuShares: defaultCPUShares}
	if v := r.GetCpuPeriod(); v > 0 {
		spec.cpuPeriod = uint64(v)
	}
	if v := r.GetCpuShares(); v > 0 {
		spec.cpuShares = uint64(v)
	}
	if r.GetMemoryLimitInBytes() > 0 && r.GetMemorySwapLimitInBytes() > 0 {
		spec.memorySwapLimit = uint64(r.GetMemorySwapLimitInBytes())
	}
	return spec
}

// metric is one metric: its descriptor and how a reading yields its
// series. series calls emit once per series, with the values of labels.
type metric struct {
	name, help string
	typ        runtimeapi.MetricType
	labels     []string // its own label keys besides metricLabels, sorted
	series     func(r *metricReading, emit func(v uint64, labels ...string))
}

const (
	counterMetric = runtimeapi.MetricType_COUNTER
	gaugeMetric   = runtimeapi.MetricType_GAUGE
)

// fromSample, fromOwn, fromProcs, fromLayer and fromSpec make the
// metrics with one series per reading, taken from one part of it.
func fromSample(name, help string, typ runtimeapi.MetricType, v func(*stats.Sample) (uint64, bool)) metric {
	return metric{name: name, help: help, typ: typ, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.cgroup == nil {
			return
		}
		if x, ok := v(r.cgroup); ok {
			emit(x)
		}
	}}
}

func fromOwn(name, help string, typ runtimeapi.MetricType, v func(*stats.OwnDetail) (uint64, bool)) metric {
	return metric{name: name, help: help, typ: typ, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.detail == nil || r.detail.Own == nil {
			return
		}
		if x, ok := v(r.detail.Own); ok {
			emit(x)
		}
	}}
}

func fromProcs(name, help string, v func(*stats.Processes) (uint64, bool)) metric {
	return metric{name: name, help: help, typ: gaugeMetric, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.procs == nil {
			return
		}
		if x, ok := v(r.procs); ok {
			emit(x)
		}
	}}
}

func fromLayer(name, help string, v func(*stats.LayerUsage) uint64) metric {
	return metric{name: name, help: help, typ: gaugeMetric, labels: []string{"device"}, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.layer != nil {
			emit(v(r.layer), r.layer.Device)
		}
	}}
}

func fromSpec(name, help string, v func(*containerSpec) uint64) metric {
	return metric{name: name, help: help, typ: gaugeMetric, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.spec != nil {
			emit(v(r.spec))
		}
	}}
}

// fromIO makes a per-device I/O counter, with cAdvisor's device label.
func fromIO(name, help string, v func(*stats.DeviceIO) uint64) metric {
	return metric{name: name, help: help, typ: counterMetric, labels: []string{"device"}, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.detail == nil {
			return
		}
		for i := range r.detail.IO {
			emit(v(&r.detail.IO[i]), r.detail.IO[i].Device)
		}
	}}
}

// fromInterface makes a per-interface network counter.
func fromInterface(name, help string, v func(*stats.Interface) uint64) metric {
	return metric{name: name, help: help, typ: counterMetric, labels: []string{"interface"}, series: func(r *metricReading, emit func(uint64, ...string)) {
		if r.network == nil {
			return
		}
		for i := range r.network.Interfaces {
			emit(v(&r.network.Interfaces[i]), r.network.Interfaces[i].Name)
		}
	}}
}

func knownValue(v uint64) (uint64, bool) { return v, true }

func optionalValue(v *uint64) (uint64, bool) {
	if v == nil {
		return 0, false
	}
	return *v, true
}

// allMetrics are all the metrics berth reports, as ListMetricDescriptors
// lists them.
var allMetrics = []metric{
	fromSample("container_cpu_usage_seconds_total", "Cumulative CPU time consumed, in whole seconds.", counterMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.CPU.UsageNanos / 1e9) }),
	fromSample("container_cpu_user_seconds_total", "Cumulative user CPU time consumed, in whole seconds.", counterMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.CPU.UserNanos / 1e9) }),
	fromSample("container_cpu_system_seconds_total", "Cumulative system CPU time consumed, in whole seconds.", counterMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.CPU.SystemNanos / 1e9) }),
	fromOwn("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counterMetric,
		func(o *stats.OwnDetail) (uint64, bool) {
			return cfsValue(o, func(c *stats.CFS) uint64 { return c.Periods })
		}),
	fromOwn("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counterMetric,
		func(o *stats.OwnDetail) (uint64, bool) {
			return cfsValue(o, func(c *stats.CFS) uint64 { return c.ThrottledPeriods })
		}),
	fromOwn("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled, in whole seconds.", counterMetric,
		func(o *stats.OwnDetail) (uint64, bool) {
			return cfsValue(o, func(c *stats.CFS) uint64 { return c.ThrottledNanos / 1e9 })
		}),

	fromSample("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.Usage) }),
	fromSample("container_memory_working_set_bytes", "Current working set in bytes.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.WorkingSet) }),
	fromSample("container_memory_rss", "Size of RSS in bytes.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.RSS) }),
	fromSample("container_memory_cache", "Number of bytes of page cache memory.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.Cache) }),
	fromSample("container_memory_mapped_file", "Size of memory mapped files in bytes.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.MappedFile) }),
	fromSample("container_memory_swap", "Container swap usage in bytes.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return s.Memory.Swap, s.Memory.SwapKnown }),
	{name: "container_memory_kernel_usage", help: "Size of kernel memory allocated in bytes.", typ: gaugeMetric,
		series: func(r *metricReading, emit func(uint64, ...string)) {
			if r.detail != nil && r.detail.KernelMemory != nil {
				emit(*r.detail.KernelMemory)
			}
		}},
	fromOwn("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gaugeMetric,
		func(o *stats.OwnDetail) (uint64, bool) { return optionalValue(o.MaxMemoryUsage) }),
	fromOwn("container_memory_failcnt", "Number of memory usage hits limits.", counterMetric,
		func(o *stats.OwnDetail) (uint64, bool) { return knownValue(o.MemoryFailcnt) }),
	{name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", typ: counterMetric,
		labels: []string{"failure_type", "scope"}, series: memoryFailures},
	{name: "container_oom_events_total", help: "Count of out of memory events observed for the container.", typ: counterMetric,
		series: func(r *metricReading, emit func(uint64, ...string)) {
			if r.detail != nil {
				emit(r.detail.OOMKills)
			}
		}},
	fromSample("container_spec_memory_limit_bytes", "Memory limit for the container, in bytes; 0 when there is none.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Memory.Limit) }),
	fromSpec("container_spec_memory_swap_limit_bytes", "Memory plus swap limit for the container, in bytes; 0 when there is none.",
		func(c *containerSpec) uint64 { return c.memorySwapLimit }),
	fromSpec("container_spec_cpu_period", "CPU period of the container, in microseconds.",
		func(c *containerSpec) uint64 { return c.cpuPeriod }),
	fromSpec("container_spec_cpu_shares", "CPU share of the container.",
		func(c *containerSpec) uint64 { return c.cpuShares }),

	fromSample("container_threads", "Number of tasks (processes and threads) in the container.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(s.Tasks) }),
	fromOwn("container_threads_max", "Maximum number of tasks allowed in the container; 0 when there is no limit.", gaugeMetric,
		func(o *stats.OwnDetail) (uint64, bool) { return knownValue(o.TasksLimit) }),
	fromProcs("container_processes", "Number of processes running inside the container.",
		func(p *stats.Processes) (uint64, bool) { return knownValue(p.Count) }),
	fromProcs("container_file_descriptors", "Number of open file descriptors for the container.",
		func(p *stats.Processes) (uint64, bool) { return p.FileDescriptors, p.FilesKnown }),
	fromProcs("container_sockets", "Number of open sockets for the container.",
		func(p *stats.Processes) (uint64, bool) { return p.Sockets, p.FilesKnown }),

	fromLayer("container_fs_usage_bytes", "Number of bytes that are consumed by the container's writable layer.",
		func(l *stats.LayerUsage) uint64 { return l.Bytes }),
	fromLayer("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on the file system holding its writable layer.",
		func(l *stats.LayerUsage) uint64 { return l.FSBytes }),
	fromLayer("container_fs_inodes_total", "Number of inodes of the file system holding the container's writable layer.",
		func(l *stats.LayerUsage) uint64 { return l.FSInodes }),
	fromLayer("container_fs_inodes_free", "Number of available inodes of the file system holding the container's writable layer.",
		func(l *stats.LayerUsage) uint64 { return l.FSInodesFree }),
	fromIO("container_fs_reads_bytes_total", "Cumulative count of bytes read.", func(d *stats.DeviceIO) uint64 { return d.ReadBytes }),
	fromIO("container_fs_reads_total", "Cumulative count of reads completed.", func(d *stats.DeviceIO) uint64 { return d.Reads }),
	fromIO("container_fs_writes_bytes_total", "Cumulative count of bytes written.", func(d *stats.DeviceIO) uint64 { return d.WriteBytes }),
	fromIO("container_fs_writes_total", "Cumulative count of writes completed.", func(d *stats.DeviceIO) uint64 { return d.Writes }),
	{name: "container_blkio_device_usage_total", help: "Blkio device bytes usage.", typ: counterMetric,
		labels: []string{"device", "major", "minor", "operation"}, series: blkioUsage},

	fromInterface("container_network_receive_bytes_total", "Cumulative count of bytes received.", func(i *stats.Interface) uint64 { return i.RxBytes }),
	fromInterface("container_network_receive_packets_total", "Cumulative count of packets received.", func(i *stats.Interface) uint64 { return i.RxPackets }),
	fromInterface("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", func(i *stats.Interface) uint64 { return i.RxErrors }),
	fromInterface("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", func(i *stats.Interface) uint64 { return i.RxDropped }),
	fromInterface("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", func(i *stats.Interface) uint64 { return i.TxBytes }),
	fromInterface("container_network_transmit_packets_total", "Cumulative count of packets transmitted.", func(i *stats.Interface) uint64 { return i.TxPackets }),
	fromInterface("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", func(i *stats.Interface) uint64 { return i.TxErrors }),
	fromInterface("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", func(i *stats.Interface) uint64 { return i.TxDropped }),

	{name: "container_start_time_seconds", help: "Start time of the container since unix epoch in seconds.", typ: gaugeMetric,
		series: func(r *metricReading, emit func(uint64, ...string)) {
			if r.started > 0 {
				emit(uint64(r.started / 1e9))
			}
		}},
	// cAdvisor's time of its last look at the container; here the time
	// this scrape read its cgroup.
	fromSample("container_last_seen", "Last time a container was seen by the exporter, in seconds since the unix epoch.", gaugeMetric,
		func(s *stats.Sample) (uint64, bool) { return knownValue(uint64(s.Time.Unix())) }),
}

func cfsValue(o *stats.OwnDetail, v func(*stats.CFS) uint64) (uint64, bool) {
	if o.CFS == nil {
		return 0, false
	}
	return v(o.CFS), true
}

// memoryFailures reports page faults as cAdvisor does: minor and major,
// of the cgroup alone ("container") and with its descendants
// ("hierarchy").
func memoryFailures(r *metricReading, emit func(uint64, ...string)) {
	if r.cgroup == nil {
		return
	}
	m := &r.cgroup.Memory
	emit(m.OwnPageFaults, "pgfault", "container")
	emit(m.OwnMajorPageFaults, "pgmajfault", "container")
	emit(m.PageFaults, "pgfault", "hierarchy")
	emit(m.MajorPageFaults, "pgmajfault", "hierarchy")
}

// blkioUsage reports the bytes read and written per device.
func blkioUsage(r *metricReading, emit func(uint64, ...string)) {
	if r.detail == nil {
		return
	}
	for i := range r.detail.IO {
		d := &r.detail.IO[i]
		major, minor := strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
		emit(d.ReadBytes, d.Device, major, minor, "Read")
		emit(d.WriteBytes, d.Device, major, minor, "Write")
	}
}

// joinLabels merges a metric's own labels (keys ownKeys, values own) into
// the common ones (values common, keys metricLabels), both sorted by
// key, into one list sorted by key.
func joinLabels(ownKeys, common, own []string) []string {
	out := make([]string, 0, len(common)+len(own))
	i, j := 0, 0
	for i < len(common) || j < len(own) {
		if j == len(own) || (i < len(common) && metricLabels[i] < ownKeys[j]) {
			out = append(out, common[i])
			i++
		} else {
			out = append(out, own[j])
			j++
		}
	}
	return out
}

// ListMetricDescriptors names every metric ListPodSandboxMetrics reports.
func (s *Service) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, m := range allMetrics {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{
			Name: m.name, Help: m.help, LabelKeys: joinLabels(m.labels, metricLabels, m.labels),
		})
	}
	return resp, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod and of its
// containers that have a cgroup. Values are read live (timestamp 0).
func (s *Service) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, sb := range s.store.Sandboxes() {
		if sb.Status().State != store.SandboxReady {
			continue
		}
		u, err := s.readSandbox(sb)
		if err != nil {
			s.log.Warn("pod metrics unreadable", "sandbox", sb.Meta.ID, "error", err)
		}
		pod, containers := s.metricReadings(sb, u)
		resp.PodMetrics = append(resp.PodMetrics, podMetrics(pod, containers))
	}
	return resp, nil
}

// metricReadings completes a pod's stats reading with what only the
// metrics report: cgroup details, process counts and container specs.
// The pod's details are those of the cgroup that measured it or, as for
// its sample, the sum of its pause and container cgroups; its processes
// are always that sum. Containers without a cgroup are left out; those
// with one are reported even when the pod as a whole could not be read.
func (s *Service) metricReadings(sb *store.Sandbox, u podUsage) (metricReading, []metricReading) {
	md := sb.Config().GetMetadata()
	pod := metricReading{id: sb.Meta.ID, labels: []string{"", sb.Meta.ID, "", md.GetName(), md.GetNamespace(), md.GetName()},
		cgroup: u.cgroup, network: u.network}
	var (
		containers []metricReading
		details    []*stats.Detail
		procs      []*stats.Processes
	)
	for i, c := range u.containers {
		cu := u.usage[i]
		if cu.cgroup == nil {
			continue
		}
		cfg := c.Config()
		name := cfg.GetMetadata().GetName()
		dir := s.cfg.CgroupDriver.Dir(c.Meta.CgroupsPath)
		r := metricReading{
			id:     c.Meta.ID,
			labels: []string{name, c.Meta.ID, cfg.GetImage().GetImage(), name, md.GetNamespace(), md.GetName()},
			cgroup: cu.cgroup, layer: cu.layer, spec: specOf(s.containerResources(c)), started: c.Status().StartedAt,
			detail: s.readDetail("container", c.Meta.ID, dir),
			procs:  s.countProcesses("container", c.Meta.ID, dir),
		}
		containers = append(containers, r)
		details = append(details, r.detail)
		procs = append(procs, r.procs)
	}
	if u.cgroup == nil {
		return pod, containers // the pod's own reading failed, or none of its cgroups exists
	}
	pauseDir := s.cfg.CgroupDriver.Dir(s.cfg.CgroupDriver.Path(sb.Meta.CgroupParent, sb.Meta.ID))
	if u.cgroupDir != "" {
		pod.detail = s.readDetail("sandbox", sb.Meta.ID, u.cgroupDir)
	} else {
		pod.detail = sumDetails(append(details, s.readDetail("sandbox", sb.Meta.ID, pauseDir)))
	}
	pod.procs = sumProcesses(append(procs, s.countProcesses("sandbox", sb.Meta.ID, pauseDir)))
	return pod, containers
}

// readDetail reads what a cgroup tells beyond a sample; nil when it is
// not there or unreadable (logged).
func (s *Service) readDetail(kind, id, dir string) *stats.Detail {
	r, ok := s.usage.(cgroupDetailReader)
	if !ok {
		return nil
	}
	d, err := r.CgroupDetail(dir)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Warn("cgroup metrics unreadable", kind, id, "error", err)
		}
		return nil
	}
	return &d
}

// countProcesses counts a cgroup's processes and their files; nil when
// it is not there or they cannot be listed (logged).
func (s *Service) countProcesses(kind, id, dir string) *stats.Processes {
	r, ok := s.usage.(processCounter)
	if !ok {
		return nil
	}
	p, err := r.Processes(dir)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Warn("processes uncountable", kind, id, "error", err)
		}
		return nil
	}
	return &p
}

// sumDetails adds up the known details, as one cgroup holding them all
// would report them (stats.Detail.Add): with no Own part, even for a
// single one. nil when none is known.
func sumDetails(ds []*stats.Detail) *stats.Detail {
	var sum *stats.Detail
	for _, d := range ds {
		switch {
		case d == nil:
		case sum == nil:
			v := *d
			v.Own = nil
			sum = &v
		default:
			v := sum.Add(*d)
			sum = &v
		}
	}
	return sum
}

// sumProcesses adds up the known counts; nil when none is known.
func sumProcesses(ps []*stats.Processes) *stats.Processes {
	var sum *stats.Processes
	for _, p := range ps {
		switch {
		case p == nil:
		case sum == nil:
			v := *p
			sum = &v
		default:
			v := sum.Add(*p)
			sum = &v
		}
	}
	return sum
}

// podMetrics turns a pod's readings into its series.
func podMetrics(pod metricReading, containers []metricReading) *runtimeapi.PodSandboxMetrics {
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: pod.id, Metrics: seriesOf(&pod)}
	for i := range containers {
		out.ContainerMetrics = append(out.ContainerMetrics, &runtimeapi.ContainerMetrics{
			ContainerId: containers[i].id, Metrics: seriesOf(&containers[i]),
		})
	}
	return out
}

// seriesOf is every series of one reading.
func seriesOf(r *metricReading) []*runtimeapi.Metric {
	var out []*runtimeapi.Metric
	for _, m := range allMetrics {
		m.series(r, func(v uint64, own ...string) {
			labels := r.labels
			if len(m.labels) > 0 {
				labels = joinLabels(m.labels, r.labels, own)
			}
			out = append(out, &runtimeapi.Metric{Name: m.name, MetricType: m.typ, LabelValues: labels, Value: u64(v)})
		})
	}
	return out
}
