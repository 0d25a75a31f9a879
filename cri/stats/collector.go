package stats

import "time"

// Config says where the collector looks. Zero values take the defaults.
type Config struct {
	CgroupRoot string           // cgroup file systems; default /sys/fs/cgroup
	ProcRoot   string           // procfs; default /proc
	SysRoot    string           // sysfs, for block device names; default /sys
	LayerTTL   time.Duration    // see Layers; default DefaultLayerTTL
	Clock      func() time.Time // default time.Now
}

// Collector is the one value the runtime holds for its measurements: a
// cgroup Reader, the CPU Rates it keeps between calls and the Layers
// cache. Safe for concurrent use.
type Collector struct {
	cgroups  *Reader
	rates    *Rates
	layers   *Layers
	devices  *deviceNames
	procRoot string
	now      func() time.Time
}

// New returns a collector. It reads nothing but the cgroup root's listing.
func New(cfg Config) *Collector {
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.LayerTTL <= 0 {
		cfg.LayerTTL = DefaultLayerTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Collector{
		cgroups:  NewReader(cfg.CgroupRoot, cfg.Clock),
		rates:    NewRates(),
		layers:   NewLayers(cfg.LayerTTL, cfg.Clock),
		devices:  newDeviceNames(cfg.SysRoot, cfg.Clock),
		procRoot: cfg.ProcRoot,
		now:      cfg.Clock,
	}
}

// Cgroup samples the cgroup at dir (see Reader.Read).
func (c *Collector) Cgroup(dir string) (Sample, error) { return c.cgroups.Read(dir) }

// CgroupDetail reads what the cgroup at dir tells beyond a sample (see
// Reader.Detail), with its block devices named.
func (c *Collector) CgroupDetail(dir string) (Detail, error) {
	d, err := c.cgroups.Detail(dir)
	if err != nil {
		return Detail{}, err
	}
	for i := range d.IO {
		d.IO[i].Device = c.devices.name(d.IO[i].Major, d.IO[i].Minor)
	}
	return d, nil
}

// Processes counts the processes in the cgroup at dir itself and the
// files they hold open (see Processes). A missing cgroup is
// errdefs.ErrNotFound.
func (c *Collector) Processes(dir string) (Processes, error) {
	pids, err := c.cgroups.Pids(dir)
	if err != nil {
		return Processes{}, err
	}
	return countProcesses(c.procRoot, pids), nil
}

// CgroupChildren lists the cgroups directly below dir (see
// Reader.Children).
func (c *Collector) CgroupChildren(dir string) ([]string, error) { return c.cgroups.Children(dir) }

// NanoCores records s's CPU usage for key and returns the rate since the
// reading kept for it (see Rates.NanoCores).
func (c *Collector) NanoCores(key string, s Sample) (uint64, bool) {
	return c.rates.NanoCores(key, s.Time, s.CPU.UsageNanos)
}

// WritableLayer returns the (cached) disk usage of dir (see Layers).
func (c *Collector) WritableLayer(dir string) (LayerUsage, error) { return c.layers.Usage(dir) }

// NetworkSample is one reading of a network namespace's interfaces.
type NetworkSample struct {
	Time       time.Time
	Interfaces []Interface
}

// Network reads the counters of pid's network namespace (see Network).
func (c *Collector) Network(pid int, nsPath string) (NetworkSample, error) {
	ifaces, err := Network(c.procRoot, pid, nsPath)
	if err != nil {
		return NetworkSample{}, err
	}
	return NetworkSample{Time: c.now(), Interfaces: ifaces}, nil
}
