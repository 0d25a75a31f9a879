package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nodeHugePageSizes are the huge page sizes the node has, as the cgroup
// names them, where pods' cgroups can limit them: none without the hugetlb
// controller (on cgroup v1, where its hierarchy is not mounted), as
// kubelet does.
func nodeHugePageSizes() []string {
	if cgroups.IsCgroup2UnifiedMode() {
		all, err := cgroups.GetAllSubsystems()
		if err != nil || !slices.Contains(all, "hugetlb") {
			return nil
		}
	} else if _, err := cgroups.FindCgroupMountpoint("", "hugetlb"); err != nil {
		return nil
	}
	return cgroups.HugePageSizes()
}

// hugePageSize is the cgroup's name of the page size a hugepages-<size>
// resource names ("2MB" for hugepages-2Mi); "" for another resource.
func hugePageSize(name v1.ResourceName) string {
	s, ok := strings.CutPrefix(string(name), v1.ResourceHugePagesPrefix)
	if !ok {
		return ""
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Value() <= 0 {
		return ""
	}
	n, unit := q.Value(), 0
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	for n >= 1024 && n%1024 == 0 && unit < len(units)-1 {
		n, unit = n/1024, unit+1
	}
	return strconv.FormatInt(n, 10) + units[unit]
}

// hugePageLimits are a container's limits of each of the node's huge page
// sizes: what it asks for, and 0 of a size it asks none of, so that it
// cannot use those pages at all, as kubelet sets them.
func hugePageLimits(limits v1.ResourceList, sizes []string) []*runtimeapi.HugepageLimit {
	asked := map[string]uint64{}
	for name, q := range limits {
		if size := hugePageSize(name); size != "" {
			asked[size] = uint64(q.Value())
		}
	}
	out := make([]*runtimeapi.HugepageLimit, 0, len(sizes))
	for _, size := range sizes {
		out = append(out, &runtimeapi.HugepageLimit{PageSize: size, Limit: asked[size]})
	}
	return out
}

// podHugePageLimits are the pod cgroup's limits of each size: its app
// containers' together, or its largest init container's if that is more.
func podHugePageLimits(pod *v1.Pod, sizes []string) []*cgroups.HugepageLimit {
	total := map[string]uint64{}
	for _, c := range pod.Spec.Containers {
		for _, l := range hugePageLimits(c.Resources.Limits, sizes) {
			total[l.PageSize] += l.Limit
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for _, l := range hugePageLimits(c.Resources.Limits, sizes) {
			total[l.PageSize] = max(total[l.PageSize], l.Limit)
		}
	}
	out := make([]*cgroups.HugepageLimit, 0, len(sizes))
	for _, size := range sizes {
		out = append(out, &cgroups.HugepageLimit{Pagesize: size, Limit: total[size]})
	}
	return out
}
