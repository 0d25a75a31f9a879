package server

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/<pid>/status CapEff.
const capSysResource = 24

// MinOOMScoreAdj returns the lowest oom_score_adj this process may give
// its children. Without CAP_SYS_RESOURCE the kernel refuses anything below
// our own value, and runc would fail with a confusing error; berth clamps
// instead, as containerd's restrict_oom_score_adj does. The note says why,
// for logging once; it is empty when nothing is restricted.
func MinOOMScoreAdj() (min int, note string) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1000, ""
	}
	for _, line := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil || caps&(1<<capSysResource) != 0 {
			return -1000, ""
		}
	}
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, "cannot read /proc/self/oom_score_adj; not lowering oom_score_adj below 0"
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, "cannot parse /proc/self/oom_score_adj; not lowering oom_score_adj below 0"
	}
	return own, fmt.Sprintf("no CAP_SYS_RESOURCE: oom_score_adj below %d is raised to %d", own, own)
}
