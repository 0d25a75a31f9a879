package stats

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/fscommon"

	"github.com/berth-project/berth/cri/errdefs"
)

// Sample is one reading of a cgroup (or the sum of several, see Add).
type Sample struct {
	Time   time.Time
	CPU    CPU
	Memory Memory
	// Tasks is the number of tasks (processes and their threads) in the
	// cgroup and below it: pids.current, or a count of cgroup.procs where
	// the pids controller is not enabled.
	Tasks uint64
	// Pressure stall information, cgroup v2 only; nil where the kernel
	// does not provide it.
	CPUPressure, MemoryPressure, IOPressure *Pressure
}

// CPU is cumulative CPU time since the cgroup was created.
type CPU struct {
	UsageNanos, UserNanos, SystemNanos uint64
}

// Memory is the cgroup's memory use, in bytes (faults are counts).
type Memory struct {
	Usage      uint64 // everything charged, page cache included
	WorkingSet uint64 // Usage less inactive file pages
	RSS        uint64 // anonymous memory and swap cache, huge pages included
	Cache      uint64 // page cache
	MappedFile uint64 // page cache mapped into processes
	// PageFaults and MajorPageFaults are cumulative counts over the
	// cgroup and its descendants; the Own ones leave the descendants out
	// (v2 does not tell them apart: there they are the same).
	PageFaults, MajorPageFaults       uint64
	OwnPageFaults, OwnMajorPageFaults uint64
	Limit                             uint64 // 0 when there is none
	// Swap is the swap in use and SwapLimit its limit (0: none); both
	// are meaningful only when SwapKnown (swap accounting is on).
	Swap, SwapLimit uint64
	SwapKnown       bool
}

// Pressure is one resource's pressure stall information.
type Pressure struct {
	Some, Full PressureData
}

// PressureData is the share of time tasks waited for a resource.
type PressureData struct {
	TotalNanos           uint64  // cumulative stall time
	Avg10, Avg60, Avg300 float64 // percentages over 10 s, 60 s, 300 s
}

// Add returns the sum of s and o, as if one cgroup held both: usage and
// counters add up, the time is the later one, and what does not add up
// (limits, pressure) is dropped.
func (s Sample) Add(o Sample) Sample {
	sum := Sample{Time: s.Time, Tasks: s.Tasks + o.Tasks}
	if o.Time.After(sum.Time) {
		sum.Time = o.Time
	}
	sum.CPU = CPU{
		UsageNanos:  s.CPU.UsageNanos + o.CPU.UsageNanos,
		UserNanos:   s.CPU.UserNanos + o.CPU.UserNanos,
		SystemNanos: s.CPU.SystemNanos + o.CPU.SystemNanos,
	}
	a, b := s.Memory, o.Memory
	sum.Memory = Memory{
		Usage:              a.Usage + b.Usage,
		WorkingSet:         a.WorkingSet + b.WorkingSet,
		RSS:                a.RSS + b.RSS,
		Cache:              a.Cache + b.Cache,
		MappedFile:         a.MappedFile + b.MappedFile,
		PageFaults:         a.PageFaults + b.PageFaults,
		MajorPageFaults:    a.MajorPageFaults + b.MajorPageFaults,
		OwnPageFaults:      a.OwnPageFaults + b.OwnPageFaults,
		OwnMajorPageFaults: a.OwnMajorPageFaults + b.OwnMajorPageFaults,
		Swap:               a.Swap + b.Swap,
		SwapKnown:          a.SwapKnown && b.SwapKnown,
	}
	return sum
}

// Reader reads cgroups through github.com/opencontainers/cgroups. It is
// safe for concurrent use: it holds nothing but where the hierarchies are.
type Reader struct {
	unified bool
	root    string            // the unified hierarchy (v2)
	v1      map[string]string // subsystem → root of its hierarchy (v1)
	now     func() time.Time
}

// v1Subsystems are the cgroup v1 hierarchies a sample is read from;
// v1DetailSubsystems are those only Detail reads.
var (
	v1Subsystems       = []string{"memory", "cpuacct", "pids"}
	v1DetailSubsystems = []string{"cpu", "blkio"}
)

// NewReader returns a Reader for the cgroup file systems mounted at root
// (normally /sys/fs/cgroup): the unified hierarchy if root holds one,
// else the v1 hierarchies below root, found by name ("cpuacct", or a
// co-mounted "cpu,cpuacct"). It only looks at root; now stamps samples.
func NewReader(root string, now func() time.Time) *Reader {
	r := &Reader{root: root, now: now, v1: map[string]string{}}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		r.unified = true
		return r
	}
	entries, _ := os.ReadDir(root)
	for _, sub := range slices.Concat(v1Subsystems, v1DetailSubsystems) {
		if fi, err := os.Stat(filepath.Join(root, sub)); err == nil && fi.IsDir() {
			r.v1[sub] = filepath.Join(root, sub)
			continue
		}
		for _, e := range entries {
			for _, name := range strings.Split(e.Name(), ",") {
				if name == sub {
					r.v1[sub] = filepath.Join(root, e.Name())
				}
			}
		}
	}
	return r
}

// Unified reports whether r reads cgroup v2.
func (r *Reader) Unified() bool { return r.unified }

// Read samples the cgroup at dir, a path relative to the hierarchies'
// roots (as runc's cgroupsPath is for the cgroupfs driver). A cgroup that
// does not exist, or vanishes while it is read, is errdefs.ErrNotFound.
func (r *Reader) Read(dir string) (Sample, error) {
	st := cgroups.NewStats()
	probe, err := r.readInto(dir, st)
	if err != nil {
		if _, serr := os.Stat(probe); errors.Is(serr, os.ErrNotExist) {
			return Sample{}, errdefs.NotFound("cgroup %s does not exist", dir)
		}
		return Sample{}, fmt.Errorf("read cgroup %s: %w", dir, err)
	}
	s := sampleOf(st, r.unified, r.now())
	if r.unified {
		// memory.swap.current exists only with swap accounting; its
		// limit cannot tell, being 0 where swap is off for the cgroup.
		if _, err := os.Stat(filepath.Join(probe, "memory.swap.current")); err == nil {
			s.Memory.SwapKnown = true
			s.Memory.Swap = st.MemoryStats.SwapOnlyUsage.Usage
			s.Memory.SwapLimit = limitOf(st.MemoryStats.SwapOnlyUsage.Limit, math.MaxUint64)
		}
	}
	return s, nil
}

// Children lists the names of the cgroups directly below dir (in the
// memory hierarchy on v1). A missing dir is errdefs.ErrNotFound.
func (r *Reader) Children(dir string) ([]string, error) {
	h := r.root
	if !r.unified {
		for _, sub := range v1Subsystems {
			if p, ok := r.v1[sub]; ok {
				h = p
				break
			}
		}
	}
	entries, err := os.ReadDir(filepath.Join(h, dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("cgroup %s does not exist", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("list cgroup %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// readInto fills st and returns the directory whose existence tells
// whether the cgroup is there.
func (r *Reader) readInto(dir string, st *cgroups.Stats) (probe string, err error) {
	if r.unified {
		path := filepath.Join(r.root, dir)
		if _, err := os.Stat(path); err != nil {
			return path, err
		}
		m, err := fs2.NewManager(&cgroups.Cgroup{}, path)
		if err != nil {
			return path, err
		}
		got, err := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO})
		if got != nil {
			*st = *got
		}
		return path, err
	}
	type getter interface {
		GetStats(path string, stats *cgroups.Stats) error
	}
	groups := map[string]getter{"memory": v1Memory{}, "cpuacct": &fs.CpuacctGroup{}, "pids": &fs.PidsGroup{}}
	found := false
	for _, sub := range v1Subsystems {
		h, ok := r.v1[sub]
		if !ok {
			continue // not mounted: that part of the sample stays zero
		}
		path := filepath.Join(h, dir)
		if probe == "" {
			probe = path
		}
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return path, err
		}
		found = true
		if err := groups[sub].GetStats(path, st); err != nil {
			return path, err
		}
	}
	if !found {
		return probe, os.ErrNotExist
	}
	return probe, nil
}

// v1Memory reads the five files of a v1 memory cgroup that a Sample
// needs, through the cgroups library's file primitives. The library's
// own fs.MemoryGroup reads some twenty (kernel memory, TCP buffers, NUMA
// breakdown, peaks and fail counts), which is two thirds of a container's
// cost; this is what keeps a container's read cheap on v1.
type v1Memory struct{}

func (v1Memory) GetStats(path string, st *cgroups.Stats) error {
	m := &st.MemoryStats
	f, err := cgroups.OpenFile(path, "memory.stat", os.O_RDONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, err := fscommon.ParseKeyValue(sc.Text())
		if err != nil {
			return fmt.Errorf("%s/memory.stat: %w", path, err)
		}
		m.Stats[k] = v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s/memory.stat: %w", path, err)
	}
	for _, v := range []struct {
		file string
		dst  *uint64
	}{
		{"memory.usage_in_bytes", &m.Usage.Usage},
		{"memory.limit_in_bytes", &m.Usage.Limit},
		{"memory.memsw.usage_in_bytes", &m.SwapUsage.Usage},
		{"memory.memsw.limit_in_bytes", &m.SwapUsage.Limit},
	} {
		n, err := fscommon.GetCgroupParamUint(path, v.file)
		if errors.Is(err, os.ErrNotExist) && strings.Contains(v.file, ".memsw.") {
			break // no swap accounting
		}
		if err != nil {
			return err
		}
		*v.dst = n
	}
	return nil
}

// v1Unlimited: cgroup v1 reports "no limit" as the largest page-aligned
// counter (0x7FFFFFFFFFFFF000 with 4 KiB pages); anything this large is
// no limit on any machine.
const v1Unlimited = 1 << 62

// sampleOf derives a Sample from what the cgroups library read.
func sampleOf(st *cgroups.Stats, unified bool, at time.Time) Sample {
	u := st.CpuStats.CpuUsage
	s := Sample{
		Time:   at,
		CPU:    CPU{UsageNanos: u.TotalUsage, UserNanos: u.UsageInUsermode, SystemNanos: u.UsageInKernelmode},
		Memory: memoryOf(&st.MemoryStats, unified),
		Tasks:  st.PidsStats.Current,
	}
	if unified {
		s.CPUPressure = pressureOf(st.CpuStats.PSI)
		s.MemoryPressure = pressureOf(st.MemoryStats.PSI)
		s.IOPressure = pressureOf(st.BlkioStats.PSI)
	}
	return s
}

// memoryOf derives the memory figures kubelet uses. The memory.stat keys
// differ between versions: v1 has hierarchical "total_*" counters, v2's
// plain ones are hierarchical already.
func memoryOf(m *cgroups.MemoryStats, unified bool) Memory {
	key := func(v1, v2 string) uint64 {
		if unified {
			return m.Stats[v2]
		}
		return m.Stats[v1]
	}
	out := Memory{
		Usage:              m.Usage.Usage,
		RSS:                key("total_rss", "anon"),
		Cache:              key("total_cache", "file"),
		MappedFile:         key("total_mapped_file", "file_mapped"),
		PageFaults:         key("total_pgfault", "pgfault"),
		MajorPageFaults:    key("total_pgmajfault", "pgmajfault"),
		OwnPageFaults:      key("pgfault", "pgfault"),
		OwnMajorPageFaults: key("pgmajfault", "pgmajfault"),
	}
	if inactive := key("total_inactive_file", "inactive_file"); out.Usage > inactive {
		out.WorkingSet = out.Usage - inactive
	}
	if unified {
		out.Limit = limitOf(m.Usage.Limit, math.MaxUint64)
		return out // swap: Read, which can tell whether it is accounted
	}
	out.Limit = limitOf(m.Usage.Limit, v1Unlimited)
	// v1 counts memory+swap together (memory.memsw.*), present only with
	// swap accounting; its limit then is never 0.
	if m.SwapUsage.Limit != 0 && m.SwapUsage.Usage >= m.Usage.Usage {
		out.SwapKnown = true
		out.Swap = m.SwapUsage.Usage - m.Usage.Usage
		if both := limitOf(m.SwapUsage.Limit, v1Unlimited); both > out.Limit && out.Limit != 0 {
			out.SwapLimit = both - out.Limit
		}
	}
	return out
}

// limitOf maps "unlimited" (any value of at least unlimited) to 0.
func limitOf(v, unlimited uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}

// pressureOf converts the library's PSI (totals in microseconds, as the
// kernel writes them) into nanoseconds.
func pressureOf(p *cgroups.PSIStats) *Pressure {
	if p == nil {
		return nil
	}
	conv := func(d cgroups.PSIData) PressureData {
		return PressureData{TotalNanos: d.Total * 1000, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &Pressure{Some: conv(p.Some), Full: conv(p.Full)}
}
