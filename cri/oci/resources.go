package oci

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxOOMScoreAdj keeps the pause process among the last the OOM killer
// picks: killing it kills the pod.
const sandboxOOMScoreAdj = -998

// swapAccounted: the memory controller limits swap (cgroup v1 with
// memsw accounting, or cgroup v2's memory.swap.max), so a swap limit can
// be set.
var swapAccounted = sync.OnceValue(func() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", rest, "memory.swap.max"))
			return err == nil
		}
	}
	return false
})

// clampOOMScoreAdj returns v within [floor, 1000] (and never below -1000).
// Lowering oom_score_adj below the runtime's own needs CAP_SYS_RESOURCE,
// which some nodes lack; runc would then fail with an obscure message.
func clampOOMScoreAdj(v, floor int) int {
	return min(max(v, floor, -1000), 1000)
}

// applyResources sets the cgroup limits and OOM score of a CRI resources
// request on spec. field prefixes error messages.
func applyResources(spec *specs.Spec, r *runtimeapi.LinuxContainerResources, minOOM int, field string) error {
	if r == nil {
		return nil
	}
	res := spec.Linux.Resources
	for name, v := range map[string]int64{
		"cpu_shares": r.GetCpuShares(), "cpu_period": r.GetCpuPeriod(),
		"memory_limit_in_bytes": r.GetMemoryLimitInBytes(), "memory_swap_limit_in_bytes": r.GetMemorySwapLimitInBytes(),
	} {
		if v < 0 {
			return errdefs.InvalidArgument("%s.%s: %d is negative", field, name, v)
		}
	}
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if v := r.GetCpuShares(); v > 0 {
		shares := uint64(v)
		cpu.Shares = &shares
	}
	if v := r.GetCpuQuota(); v != 0 {
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v > 0 {
		period := uint64(v)
		cpu.Period = &period
	}
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &v}
		// Without a swap limit the container may not swap at all (memory
		// and swap together capped at the memory limit), as containerd sets
		// it and kubelet's NoSwap behaviour expects; where the kernel
		// accounts no swap, there is none to limit.
		s := r.GetMemorySwapLimitInBytes()
		switch {
		case s > 0 && s < v:
			return errdefs.InvalidArgument("%s.memory_swap_limit_in_bytes: %d is below memory_limit_in_bytes %d",
				field, s, v)
		case s > 0:
			res.Memory.Swap = &s
		case swapAccounted():
			res.Memory.Swap = &v
		}
	}
	for i, h := range r.GetHugepageLimits() {
		if h.GetPageSize() == "" {
			return errdefs.InvalidArgument("%s.hugepage_limits[%d].page_size is empty", field, i)
		}
		res.HugepageLimits = append(res.HugepageLimits,
			specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		res.Unified = maps.Clone(r.GetUnified())
	}
	oom := clampOOMScoreAdj(int(r.GetOomScoreAdj()), minOOM)
	spec.Process.OOMScoreAdj = &oom
	return nil
}

// maxNoFile is the open-files limit containers get, as under containerd.
const maxNoFile = 1048576

// defaultRlimits raises RLIMIT_NOFILE to maxNoFile, or to the runtime's own
// hard limit when that is lower: raising a hard limit needs
// CAP_SYS_RESOURCE, and runc would fail the start without it.
func defaultRlimits() []specs.POSIXRlimit {
	limit := uint64(maxNoFile)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && cur.Max < limit {
		limit = cur.Max
	}
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: limit, Soft: limit}}
}
