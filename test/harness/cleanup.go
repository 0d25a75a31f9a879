package harness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// killShims kills the shims (and so nothing else) that a failed run left.
func killShims(state string) {
	killProcesses(func(cmdline string) bool { return isBerthShimOf(cmdline, state) })
}

// isBerthShimOf: the shims of the berthd with this state directory have
// their sockets in state/shims.
func isBerthShimOf(cmdline, state string) bool {
	return strings.Contains(cmdline, "berth-shim") && strings.Contains(cmdline, filepath.Join(state, "shims"))
}

// ShimPids are the process IDs of berthd's shims.
func (d *Daemon) ShimPids() []int {
	return pids(func(cmdline string) bool { return isBerthShimOf(cmdline, d.State) })
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

// removeRules deletes the iptables rules that name a CNI network in their
// comment (the bridge plugin's masquerade rules of pods whose CNI DEL
// never ran) and the per-pod chains they jump to.
func removeRules(network string) error {
	dump, err := exec.Command("iptables-save").Output()
	if err != nil {
		return nil // no iptables: no rules
	}
	tag := `name: \"` + network + `\"`
	var script strings.Builder
	table, rules, chains := "", "", ""
	flush := func() {
		if rules != "" {
			script.WriteString(table + "\n" + rules + chains + "COMMIT\n")
		}
		rules, chains = "", ""
	}
	for _, line := range strings.Split(string(dump), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			flush()
			table = line
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, tag):
			rules += "-D " + strings.TrimPrefix(line, "-A ") + "\n"
			f := strings.Fields(line)
			if i := slices.Index(f, "-j"); i >= 0 && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.Contains(chains, f[i+1]) {
				chains += "-F " + f[i+1] + "\n-X " + f[i+1] + "\n"
			}
		}
	}
	flush()
	if script.Len() == 0 {
		return nil
	}
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("remove the iptables rules of %s: %v: %s", network, err, out)
	}
	// Reported, not failed: chaos checks for leaked rules where berth
	// alone ran CNI; here a test may have cut a pod's teardown short.
	fmt.Fprintf(os.Stderr, "harness: removed iptables rules left of network %s\n", network)
	return nil
}
