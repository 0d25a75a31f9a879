package kube

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"

	"github.com/google/cadvisor/lib/fs"
	"github.com/google/cadvisor/lib/machine"
	"github.com/google/cadvisor/lib/utils/sysfs"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/admission"
	"github.com/berth-project/berth/pkg/eviction"
)

// machineFacts is what the Node reports about the machine, read once.
type machineFacts struct {
	cores            int
	memory           uint64
	hugePages        map[uint64]uint64 // page size in KiB → pages
	ephemeralStorage uint64            // the filesystem holding berth's root
	machineID        string
	systemUUID       string
	bootID           string
	kernel, osImage  string
}

// readMachine asks cAdvisor, as kubelet does.
func readMachine(root string) (machineFacts, error) {
	fsInfo, err := fs.NewFsInfo(fs.Context{})
	if err != nil {
		return machineFacts{}, fmt.Errorf("filesystems: %w", err)
	}
	mi, err := machine.Info(sysfs.NewRealSysFs(), fsInfo, true)
	if err != nil {
		return machineFacts{}, fmt.Errorf("machine info: %w", err)
	}
	f := machineFacts{cores: mi.NumCores, memory: mi.MemoryCapacity, hugePages: map[uint64]uint64{},
		machineID: mi.MachineID, systemUUID: mi.SystemUUID, bootID: mi.BootID,
		kernel: machine.KernelVersion(), osImage: machine.ContainerOsVersion()}
	for _, hp := range mi.HugePages {
		f.hugePages[hp.PageSize] = hp.NumPages
	}
	if dev, err := fsInfo.GetDirFsDevice(root); err == nil {
		for _, fsys := range mi.Filesystems {
			if fsys.Device == dev.Device {
				f.ephemeralStorage = fsys.Capacity
			}
		}
	}
	return f, nil
}

// resources are the Node's capacity and allocatable: the capacity less
// huge pages and what the hard eviction thresholds hold back (memory.
// available, nodefs.available), as kubelet computes it, so that the
// scheduler places the same pods.
func resources(f machineFacts, maxPods int, hard []eviction.Threshold) (capacity, allocatable v1.ResourceList) {
	capacity = v1.ResourceList{
		v1.ResourceCPU:              *resource.NewQuantity(int64(f.cores), resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(int64(f.memory), resource.BinarySI),
		v1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(int64(f.ephemeralStorage), resource.BinarySI),
	}
	for size, pages := range f.hugePages {
		name := v1.ResourceName(v1.ResourceHugePagesPrefix + resource.NewQuantity(int64(size)<<10, resource.BinarySI).String())
		capacity[name] = *resource.NewQuantity(int64(size<<10*pages), resource.BinarySI)
	}
	return capacity, admission.Allocatable(capacity, hard)
}

// nodeFacts is what one status computation reads.
type nodeFacts struct {
	machine      machineFacts
	maxPods      int
	hardEviction []eviction.Threshold
	// memoryPressure and diskPressure are the eviction manager's.
	memoryPressure, diskPressure bool
	addresses                    []v1.NodeAddress
	runtimeVersion               string // <runtime>://<version>
	runtime                      *runtimeapi.RuntimeStatus
	runtimeErr                   error
	kubeletVersion               string
	kubeletPort                  int32
	images                       []*runtimeapi.Image
	now                          metav1.Time
	conditionsBefore             []v1.NodeCondition
}

// nodeStatus computes the Node's status: pure, so its rules are
// table-tested.
func nodeStatus(f nodeFacts) v1.NodeStatus {
	capacity, allocatable := resources(f.machine, f.maxPods, f.hardEviction)
	return v1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Addresses:   f.addresses,
		Conditions:  nodeConditions(f),
		NodeInfo: v1.NodeSystemInfo{
			MachineID: f.machine.machineID, SystemUUID: f.machine.systemUUID, BootID: f.machine.bootID,
			KernelVersion: f.machine.kernel, OSImage: f.machine.osImage,
			ContainerRuntimeVersion: f.runtimeVersion, KubeletVersion: f.kubeletVersion,
			OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
		},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: f.kubeletPort}},
		Images:          nodeImages(f.images),
	}
}

// kubelet's bounds on the images a Node lists: the scheduler's image
// locality needs the big ones, not every name of every image.
const (
	maxNodeImages    = 50
	maxNamesPerImage = 5
)

// nodeImages are the node's images as kubelet lists them: largest first,
// each by its digests, then its tags.
func nodeImages(imgs []*runtimeapi.Image) []v1.ContainerImage {
	imgs = slices.Clone(imgs)
	slices.SortStableFunc(imgs, func(a, b *runtimeapi.Image) int { return cmp.Compare(b.GetSize(), a.GetSize()) })
	var out []v1.ContainerImage
	for _, img := range imgs {
		names := append(slices.Clone(img.GetRepoDigests()), img.GetRepoTags()...)
		if len(names) == 0 {
			continue
		}
		if len(names) > maxNamesPerImage {
			names = names[:maxNamesPerImage]
		}
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: int64(img.GetSize())})
		if len(out) == maxNodeImages {
			break
		}
	}
	return out
}

// nodeConditions are kubelet's four conditions. Ready needs the runtime
// and the pod network ready, as the CRI says; the pressure conditions are
// the eviction manager's (PIDPressure is never True: berth does not watch
// pid.available). A condition's transition time moves only when its
// status does.
func nodeConditions(f nodeFacts) []v1.NodeCondition {
	ready := v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "berth is posting ready status"}
	switch {
	case f.runtimeErr != nil:
		ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, "KubeletNotReady", "container runtime is down: "+f.runtimeErr.Error()
	default:
		for _, c := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
			if cond := runtimeCondition(f.runtime, c); cond == nil || !cond.Status {
				msg := "container runtime status check: " + c + " is false"
				if cond != nil && cond.Message != "" {
					msg += ": " + cond.Reason + ": " + cond.Message
				}
				if c == runtimeapi.NetworkReady {
					msg = "container runtime network not ready: " + msg
				}
				ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, "KubeletNotReady", msg
				break
			}
		}
	}
	memory := v1.NodeCondition{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "berth has sufficient memory available"}
	if f.memoryPressure {
		memory.Status, memory.Reason, memory.Message = v1.ConditionTrue, "KubeletHasInsufficientMemory", "berth has insufficient memory available"
	}
	disk := v1.NodeCondition{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "berth has no disk pressure"}
	if f.diskPressure {
		disk.Status, disk.Reason, disk.Message = v1.ConditionTrue, "KubeletHasDiskPressure", "berth has disk pressure"
	}
	conds := []v1.NodeCondition{
		memory,
		disk,
		{Type: v1.NodePIDPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "berth has sufficient PID available"},
		ready,
	}
	for i := range conds {
		conds[i].LastHeartbeatTime, conds[i].LastTransitionTime = f.now, f.now
		for _, old := range f.conditionsBefore {
			if old.Type == conds[i].Type && old.Status == conds[i].Status {
				conds[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	return conds
}

func runtimeCondition(st *runtimeapi.RuntimeStatus, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// sameStatus says whether two statuses differ in more than heartbeat
// times: only then must the Node be written before the report period.
func sameStatus(a, b v1.NodeStatus) bool {
	strip := func(s v1.NodeStatus) v1.NodeStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		s.Images, s.VolumesInUse, s.VolumesAttached = nil, nil, nil
		return s
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

// nodeLabels are the well-known labels kubelet sets on its Node, with the
// operator's --node-labels over them.
func nodeLabels(name string, extra map[string]string) map[string]string {
	l := map[string]string{
		v1.LabelHostname:   name,
		v1.LabelOSStable:   runtime.GOOS,
		v1.LabelArchStable: runtime.GOARCH,
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}
