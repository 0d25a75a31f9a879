package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The faults a round may inject.
const (
	faultNone          = "none"
	faultKillBerthd    = "kill -9 berthd"
	faultKillShim      = "kill -9 a shim"
	faultRuncBefore    = "runc dies before a run"
	faultRuncAfter     = "runc dies after a run"
	faultCNIFail       = "CNI ADD fails"
	faultCNIHang       = "CNI ADD hangs"
	faultLogsFull      = "log filesystem full"
	faultRegistryStall = "registry stalls"
)

var faults = []string{faultNone, faultKillBerthd, faultKillBerthd, faultKillShim, faultRuncBefore, faultRuncAfter,
	faultCNIFail, faultCNIHang, faultLogsFull, faultRegistryStall}

// runcWrapper stands in for runc: once told (a file naming the point),
// the next container creation (berth-shim's "runc run --detach") dies
// with SIGKILL before runc runs, or right after runc created and started
// the container, so that the shim sees a failure for a container that
// exists.
const runcWrapper = `#!/bin/sh
case " $* " in
*" run "*)
	if mode=$(cat %[1]s 2>/dev/null) && rm %[1]s 2>/dev/null; then
		[ "$mode" = before ] && kill -9 $$
		%[2]s "$@"
		kill -9 $$
	fi;;
esac
exec %[2]s "$@"
`

// cniWrapper stands in for the bridge plugin: while a fault file exists,
// ADD fails with a CNI error, or hangs for 20 s before it goes on.
const cniWrapper = `#!/bin/sh
if [ "$CNI_COMMAND" = ADD ] && mode=$(cat %[1]s 2>/dev/null); then
	case "$mode" in
	fail) echo x >> %[1]s.fired; echo '{"cniVersion":"1.0.0","code":11,"msg":"chaos: injected failure"}'; exit 1;;
	hang) echo x >> %[1]s.fired; sleep 20;;
	esac
fi
exec %[2]s "$@"
`

// wrappers writes the runc and CNI wrappers into dir and returns the
// runc binary and the CNI plugin directories berthd is to use.
func wrappers(dir, bin string) (runc string, cniDirs string, err error) {
	cniDir := filepath.Join(dir, "cni")
	if err := os.MkdirAll(cniDir, 0o755); err != nil {
		return "", "", err
	}
	runc = filepath.Join(dir, "runc")
	if err := os.WriteFile(runc, fmt.Appendf(nil, runcWrapper, filepath.Join(dir, "runc-fault"), filepath.Join(bin, "runc")), 0o755); err != nil {
		return "", "", err
	}
	bridge := fmt.Appendf(nil, cniWrapper, filepath.Join(dir, "cni-fault"), filepath.Join(bin, "cni", "bridge"))
	if err := os.WriteFile(filepath.Join(cniDir, "bridge"), bridge, 0o755); err != nil {
		return "", "", err
	}
	return runc, cniDir + "," + filepath.Join(bin, "cni"), nil
}

// fill writes to dir's filesystem until it is full and returns the file
// that holds the space.
func fill(dir string) (string, error) {
	path := filepath.Join(dir, "chaos-filler")
	f, err := os.Create(path)
	if err != nil {
		return path, err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path, nil
			}
			return path, err
		}
	}
}

// shims are the berth-shim processes of a state directory, by the
// sandbox each serves (its socket is <state>/shims/<sandbox>.sock).
func shims(state string) map[string]int {
	out := map[string]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	prefix := filepath.Join(state, "shims") + "/"
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(data), "berth-shim") {
			continue
		}
		for _, arg := range strings.Split(string(data), "\x00") {
			if rest, ok := strings.CutPrefix(arg, prefix); ok && strings.HasSuffix(rest, ".sock") {
				var pid int
				fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
				out[strings.TrimSuffix(rest, ".sock")] = pid
			}
		}
	}
	return out
}

// window is when a fault that can lose log lines (a full filesystem)
// held.
type window struct{ from, to time.Time }

func (w window) overlaps(a, b time.Time) bool {
	// A second of slack each side: lines are stamped by the shim when it
	// reads them, not when they were written.
	return !a.After(w.to.Add(time.Second)) && !b.Before(w.from.Add(-time.Second))
}
