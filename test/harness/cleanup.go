package harness

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// killShims kills the shims (and so nothing else) that a failed run left;
// their sockets live in state/shims.
func killShims(state string) {
	killProcesses(func(cmdline string) bool {
		return strings.Contains(cmdline, "berth-shim") && strings.Contains(cmdline, filepath.Join(state, "shims"))
	})
}

// MountsBelow lists mount points under dir, deepest first.
func MountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unmountBelow(dir string) {
	for _, m := range MountsBelow(dir) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

func subnetInUse(cidr string) bool {
	_, want, _ := net.ParseCIDR(cidr)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if want.Contains(a.IP) || a.IPNet.Contains(want.IP) {
			return true
		}
	}
	return false
}
