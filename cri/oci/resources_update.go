package oci

import (
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// MergeResources returns cur with the fields update sets laid over it.
// The CRI calls 0 and "" "not specified", so a zero field in update keeps
// the current value, as runc update leaves an unset limit alone; unified
// entries are merged key by key and hugepage limits by page size. Neither
// argument is modified; nil means "nothing set".
func MergeResources(cur, update *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if cur != nil {
		out = &runtimeapi.LinuxContainerResources{
			CpuPeriod: cur.CpuPeriod, CpuQuota: cur.CpuQuota, CpuShares: cur.CpuShares,
			MemoryLimitInBytes: cur.MemoryLimitInBytes, MemorySwapLimitInBytes: cur.MemorySwapLimitInBytes,
			OomScoreAdj: cur.OomScoreAdj, CpusetCpus: cur.CpusetCpus, CpusetMems: cur.CpusetMems,
			Unified: maps.Clone(cur.Unified),
		}
		for _, h := range cur.HugepageLimits {
			out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
		}
	}
	if update == nil {
		return out
	}
	for _, f := range []struct{ dst, src *int64 }{
		{&out.CpuPeriod, &update.CpuPeriod}, {&out.CpuQuota, &update.CpuQuota}, {&out.CpuShares, &update.CpuShares},
		{&out.MemoryLimitInBytes, &update.MemoryLimitInBytes}, {&out.MemorySwapLimitInBytes, &update.MemorySwapLimitInBytes},
		{&out.OomScoreAdj, &update.OomScoreAdj},
	} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	if update.CpusetCpus != "" {
		out.CpusetCpus = update.CpusetCpus
	}
	if update.CpusetMems != "" {
		out.CpusetMems = update.CpusetMems
	}
	for k, v := range update.Unified {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		out.Unified[k] = v
	}
	for _, h := range update.HugepageLimits {
		i := slices.IndexFunc(out.HugepageLimits, func(o *runtimeapi.HugepageLimit) bool { return o.GetPageSize() == h.GetPageSize() })
		if i < 0 {
			out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
		} else {
			out.HugepageLimits[i].Limit = h.GetLimit()
		}
	}
	return out
}

// UpdateContainerResources replaces the cgroup limits (CPU, cpuset,
// memory, hugepages, unified) of a container's spec with r's, and its
// process's oom_score_adj, clamped as at creation. Everything else,
// devices included, stays. On a bad value spec is left unchanged and the
// error is errdefs.InvalidArgument naming the field.
func UpdateContainerResources(spec *specs.Spec, r *runtimeapi.LinuxContainerResources, minOOMScoreAdj int, field string) error {
	return replaceLimits(spec, r, minOOMScoreAdj, field, false)
}

// UpdateSandboxResources does what UpdateContainerResources does to a
// pause process's spec, but keeps the pause process's fixed OOM score.
func UpdateSandboxResources(spec *specs.Spec, r *runtimeapi.LinuxContainerResources, minOOMScoreAdj int, field string) error {
	return replaceLimits(spec, r, minOOMScoreAdj, field, true)
}

func replaceLimits(spec *specs.Spec, r *runtimeapi.LinuxContainerResources, minOOM int, field string, keepOOM bool) error {
	if spec == nil || spec.Process == nil || spec.Linux == nil {
		return errdefs.InvalidArgument("%s: the runtime spec has no process or linux section", field)
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	res := spec.Linux.Resources
	oldRes, oldOOM := *res, spec.Process.OOMScoreAdj
	res.CPU, res.Memory, res.HugepageLimits, res.Unified = nil, nil, nil, nil
	if err := applyResources(spec, r, minOOM, field); err != nil {
		*res, spec.Process.OOMScoreAdj = oldRes, oldOOM
		return err
	}
	if keepOOM {
		spec.Process.OOMScoreAdj = oldOOM
	}
	return nil
}
