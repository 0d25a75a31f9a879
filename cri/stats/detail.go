package stats

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"

	"github.com/berth-project/berth/cri/errdefs"
)

// Detail is what a cgroup tells beyond a Sample: the counters cAdvisor
// exports as metrics and the CRI stats messages have no field for. It is
// read apart from the Sample (Reader.Detail), so that the stats verbs,
// polled more often, do not pay for it.
type Detail struct {
	// KernelMemory is the kernel memory charged to the cgroup, in bytes
	// (v1 memory.kmem.usage_in_bytes, v2 memory.stat "kernel"); nil where
	// the kernel does not account it apart.
	KernelMemory *uint64
	// OOMKills counts the processes the OOM killer killed in the cgroup
	// (v1 memory.oom_control, v2 memory.events "oom_kill").
	OOMKills uint64
	// IO is the block I/O of the cgroup and its descendants, one entry
	// per device in device number order.
	IO []DeviceIO
	// Own is what belongs to the one cgroup read and does not add up
	// over several; nil in a sum (see Add).
	Own *OwnDetail
}

// OwnDetail is the part of a Detail that is the cgroup's alone: its
// limits, how often they bit, and its peak.
type OwnDetail struct {
	// CFS is the cgroup's CPU bandwidth control; nil where the cpu
	// controller is not there.
	CFS *CFS
	// MemoryFailcnt counts the times memory usage hit the cgroup's limit
	// (v1 memory.failcnt, v2 memory.events "max").
	MemoryFailcnt uint64
	// MaxMemoryUsage is the peak of memory usage in bytes (v1
	// memory.max_usage_in_bytes, v2 memory.peak); nil before Linux 5.19
	// on v2.
	MaxMemoryUsage *uint64
	// TasksLimit is pids.max; 0 when there is none.
	TasksLimit uint64
}

// CFS is the cgroup's CPU quota at work (cpu.stat): the enforcement
// periods that elapsed while it had runnable tasks, those in which it
// used up its quota, and the time it then waited.
type CFS struct {
	Periods, ThrottledPeriods uint64
	ThrottledNanos            uint64
}

// DeviceIO is the block I/O one cgroup did on one device, as the block
// layer counted it (v1 blkio.throttle.*, v2 io.stat).
type DeviceIO struct {
	Major, Minor          uint64
	Device                string // "/dev/<name>", or "" when it has none (see Collector)
	ReadBytes, WriteBytes uint64
	Reads, Writes         uint64 // operations
}

// Add returns the sum of d and o, as Sample.Add does: counters add up,
// the Own parts do not.
func (d Detail) Add(o Detail) Detail {
	sum := Detail{OOMKills: d.OOMKills + o.OOMKills}
	if d.KernelMemory != nil && o.KernelMemory != nil {
		v := *d.KernelMemory + *o.KernelMemory
		sum.KernelMemory = &v
	}
	io := slices.Concat(d.IO, o.IO)
	slices.SortFunc(io, func(a, b DeviceIO) int { return cmpDevice(&a, &b) })
	for _, e := range io {
		if n := len(sum.IO); n > 0 && cmpDevice(&sum.IO[n-1], &e) == 0 {
			last := &sum.IO[n-1]
			last.ReadBytes += e.ReadBytes
			last.WriteBytes += e.WriteBytes
			last.Reads += e.Reads
			last.Writes += e.Writes
			continue
		}
		sum.IO = append(sum.IO, e)
	}
	return sum
}

func cmpDevice(a, b *DeviceIO) int {
	return cmp.Or(cmp.Compare(a.Major, b.Major), cmp.Compare(a.Minor, b.Minor))
}

// Detail reads the Detail of the cgroup at dir (relative to the
// hierarchies' roots, as for Read). Files a kernel or a mount may lack
// leave their parts unknown; a cgroup that does not exist, or vanishes
// while it is read, is errdefs.ErrNotFound (or, if it vanishes between
// optional files, read with those unknown).
//
// v1 reads cpu.stat, five memory files, pids.max and two blkio files;
// v2 reads cpu.stat, memory.events, memory.peak, memory.stat, pids.max
// and io.stat (the first, third and last are also read by Read there).
func (r *Reader) Detail(dir string) (Detail, error) {
	var (
		d     Detail
		probe string
		err   error
	)
	if r.unified {
		probe = filepath.Join(r.root, dir)
		err = detailV2(probe, &d)
	} else {
		probe, err = r.detailV1(dir, &d)
	}
	if err != nil {
		if _, serr := os.Stat(probe); errors.Is(serr, os.ErrNotExist) {
			return Detail{}, errdefs.NotFound("cgroup %s does not exist", dir)
		}
		return Detail{}, fmt.Errorf("read cgroup %s: %w", dir, err)
	}
	return d, nil
}

// detailV1 fills d from the v1 hierarchies; probe is the directory whose
// existence tells whether the cgroup is there (the memory one).
func (r *Reader) detailV1(dir string, d *Detail) (probe string, err error) {
	own := &OwnDetail{}
	d.Own = own
	path := func(sub string) (string, bool) {
		h, ok := r.v1[sub]
		return filepath.Join(h, dir), ok
	}
	if p, ok := path("memory"); ok {
		probe = p
		if err := readUints(p, []uintFile{
			{"memory.failcnt", &own.MemoryFailcnt, nil},
			{"memory.max_usage_in_bytes", nil, &own.MaxMemoryUsage},
			{"memory.kmem.usage_in_bytes", nil, &d.KernelMemory},
		}); err != nil {
			return probe, err
		}
		if err := readKeyValues(p, "memory.oom_control", func(k string, v uint64) {
			if k == "oom_kill" {
				d.OOMKills = v
			}
		}); err != nil && !errors.Is(err, os.ErrNotExist) {
			return probe, err
		}
	}
	if p, ok := path("pids"); ok {
		if probe == "" {
			probe = p
		}
		if err := readUints(p, []uintFile{{"pids.max", &own.TasksLimit, nil}}); err != nil {
			return probe, err
		}
	}
	if p, ok := path("cpu"); ok {
		cfs := CFS{}
		err := readKeyValues(p, "cpu.stat", func(k string, v uint64) {
			switch k {
			case "nr_periods":
				cfs.Periods = v
			case "nr_throttled":
				cfs.ThrottledPeriods = v
			case "throttled_time":
				cfs.ThrottledNanos = v
			}
		})
		switch {
		case err == nil:
			own.CFS = &cfs
		case !errors.Is(err, os.ErrNotExist):
			return probe, err
		}
	}
	if p, ok := path("blkio"); ok {
		io, err := readBlkioV1(p)
		if err != nil {
			return probe, err
		}
		d.IO = io
	}
	if probe == "" {
		return "", errdefs.NotFound("no cgroup v1 hierarchy holds %s", dir)
	}
	own.TasksLimit = limitOf(own.TasksLimit, math.MaxUint64)
	return probe, nil
}

// readBlkioV1 reads the bytes and operations counted per device and
// direction, with the descendants' where the kernel offers a recursive
// file. Missing files are no I/O known.
func readBlkioV1(path string) ([]DeviceIO, error) {
	devices := map[[2]uint64]*DeviceIO{}
	for _, f := range []struct {
		name        string
		read, write func(*DeviceIO) *uint64
	}{
		{"blkio.throttle.io_service_bytes", func(d *DeviceIO) *uint64 { return &d.ReadBytes }, func(d *DeviceIO) *uint64 { return &d.WriteBytes }},
		{"blkio.throttle.io_serviced", func(d *DeviceIO) *uint64 { return &d.Reads }, func(d *DeviceIO) *uint64 { return &d.Writes }},
	} {
		name := f.name + "_recursive"
		data, err := cgroups.ReadFile(path, name)
		if errors.Is(err, os.ErrNotExist) {
			name = f.name
			data, err = cgroups.ReadFile(path, name)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := parseBlkioV1(data, func(major, minor uint64, op string, v uint64) {
			d := device(devices, major, minor)
			switch op {
			case "Read":
				*f.read(d) = v
			case "Write":
				*f.write(d) = v
			}
		}); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", path, name, err)
		}
	}
	return sortedDevices(devices), nil
}

// parseBlkioV1 parses "<major>:<minor> <op> <value>" lines, skipping the
// closing "Total <value>".
func parseBlkioV1(data string, fn func(major, minor uint64, op string, v uint64)) error {
	for line := range strings.Lines(data) {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		major, minor, err := parseDevice(fields[0])
		if err != nil {
			return err
		}
		v, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return err
		}
		fn(major, minor, fields[1], v)
	}
	return nil
}

// detailV2 fills d from the unified hierarchy's cgroup at path.
func detailV2(path string, d *Detail) error {
	own := &OwnDetail{}
	d.Own = own
	cfs, hasCFS := CFS{}, false
	if err := readKeyValues(path, "cpu.stat", func(k string, v uint64) {
		switch k {
		case "nr_periods": // only with the cpu controller enabled
			cfs.Periods, hasCFS = v, true
		case "nr_throttled":
			cfs.ThrottledPeriods = v
		case "throttled_usec":
			cfs.ThrottledNanos = v * 1000
		}
	}); err != nil {
		return err
	}
	if hasCFS {
		own.CFS = &cfs
	}
	if err := readKeyValues(path, "memory.events", func(k string, v uint64) {
		switch k {
		case "max":
			own.MemoryFailcnt = v
		case "oom_kill":
			d.OOMKills = v
		}
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := readKeyValues(path, "memory.stat", func(k string, v uint64) {
		if k == "kernel" { // since Linux 5.18
			d.KernelMemory = &v
		}
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := readUints(path, []uintFile{
		{"memory.peak", nil, &own.MaxMemoryUsage},
		{"pids.max", &own.TasksLimit, nil},
	}); err != nil {
		return err
	}
	own.TasksLimit = limitOf(own.TasksLimit, math.MaxUint64)
	io, err := readIOStat(path)
	if err != nil {
		return err
	}
	d.IO = io
	return nil
}

// readIOStat parses io.stat: "<major>:<minor> rbytes=… wbytes=… rios=…
// wios=… dbytes=… dios=…" per device. No file is no I/O known.
func readIOStat(path string) ([]DeviceIO, error) {
	data, err := cgroups.ReadFile(path, "io.stat")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	devices := map[[2]uint64]*DeviceIO{}
	for line := range strings.Lines(data) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		major, minor, err := parseDevice(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s/io.stat: %w", path, err)
		}
		d := device(devices, major, minor)
		for _, kv := range fields[1:] {
			k, s, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s/io.stat: %s: %w", path, kv, err)
			}
			switch k {
			case "rbytes":
				d.ReadBytes = v
			case "wbytes":
				d.WriteBytes = v
			case "rios":
				d.Reads = v
			case "wios":
				d.Writes = v
			}
		}
	}
	return sortedDevices(devices), nil
}

func parseDevice(s string) (major, minor uint64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("device %q is not major:minor", s)
	}
	if major, err = strconv.ParseUint(a, 10, 64); err == nil {
		minor, err = strconv.ParseUint(b, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("device %q: %w", s, err)
	}
	return major, minor, nil
}

func device(m map[[2]uint64]*DeviceIO, major, minor uint64) *DeviceIO {
	k := [2]uint64{major, minor}
	if d, ok := m[k]; ok {
		return d
	}
	d := &DeviceIO{Major: major, Minor: minor}
	m[k] = d
	return d
}

func sortedDevices(m map[[2]uint64]*DeviceIO) []DeviceIO {
	out := make([]DeviceIO, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DeviceIO) int { return cmpDevice(&a, &b) })
	return out
}

// uintFile is a one-number cgroup file and where its value goes: into
// dst, where a missing file is an error, or into opt, which a missing
// file leaves nil.
type uintFile struct {
	name string
	dst  *uint64
	opt  **uint64
}

func readUints(path string, files []uintFile) error {
	for _, f := range files {
		v, err := fscommon.GetCgroupParamUint(path, f.name)
		if f.opt != nil && errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if f.opt != nil {
			*f.opt = &v
		} else {
			*f.dst = v
		}
	}
	return nil
}

// readKeyValues calls fn for each "<key> <value>" line of a cgroup file.
func readKeyValues(path, file string, fn func(k string, v uint64)) error {
	data, err := cgroups.ReadFile(path, file)
	if err != nil {
		return err
	}
	for line := range strings.Lines(data) {
		k, v, err := fscommon.ParseKeyValue(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return fmt.Errorf("%s/%s: %w", path, file, err)
		}
		fn(k, v)
	}
	return nil
}
