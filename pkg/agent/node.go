package agent

import (
	"net"
	"runtime"

	"github.com/berth-project/berth/pkg/admission"
)

// nodeCapacity is the node's memory in bytes and CPU in millicores.
func nodeCapacity() (memory, milliCPU int64) {
	memory, _ = admission.MemTotal() // 0 if unreadable: no memory-based defaults
	return memory, int64(runtime.NumCPU()) * 1000
}

// nodeSwap is the node's swap (SwapTotal), 0 if unreadable.
func nodeSwap() int64 {
	swap, _ := admission.MemInfo("SwapTotal")
	return swap
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
