package agent

import (
	"net"
	"runtime"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/admission"
)

// nodeCapacity is the node's memory in bytes and CPU in millicores.
func nodeCapacity() (memory, milliCPU int64) {
	memory, _ = admission.MemTotal() // 0 if unreadable: no memory-based defaults
	return memory, int64(runtime.NumCPU()) * 1000
}

// hostIPs are the node's global unicast addresses, IPv4 first.
func hostIPs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var v4, v6 []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			v4 = append(v4, ipn.IP.String())
		} else {
			v6 = append(v6, ipn.IP.String())
		}
	}
	return append(v4, v6...)
}

// cgroupParent is the pod's cgroup in the QoS hierarchy: Guaranteed pods
// directly under the root, the others under burstable/ or besteffort/.
func (m *Manager) cgroupParent(pod *v1.Pod) string {
	root := m.cfg.CgroupRoot
	if root == "" {
		return ""
	}
	qos := qosClass(pod)
	if m.cfg.SystemdCgroups {
		slice := strings.TrimSuffix(root, ".slice")
		if qos != v1.PodQOSGuaranteed {
			slice += "-" + strings.ToLower(string(qos))
		}
		return slice + "-pod" + strings.ReplaceAll(string(pod.UID), "-", "_") + ".slice"
	}
	p := "/" + strings.Trim(root, "/")
	if qos != v1.PodQOSGuaranteed {
		p += "/" + strings.ToLower(string(qos))
	}
	return p + "/pod" + string(pod.UID)
}
