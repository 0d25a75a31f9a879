package enter

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// hierarchy is one mounted cgroup hierarchy: its controllers as
// /proc/<pid>/cgroup names them ("cpu,cpuacct", "name=systemd"; "" for the
// unified one), where it is mounted, and which of its directories the
// mount shows at that place.
type hierarchy struct {
	controllers string
	mountpoint  string
	root        string
}

// cgroupMounts reads the cgroup hierarchies mounted in a mount namespace
// from its mountinfo.
func cgroupMounts(r io.Reader) ([]hierarchy, error) {
	infos, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup mounts: %w", err)
	}
	var out []hierarchy
	for _, m := range infos {
		var ctrls []string
		if m.FSType == "cgroup" {
			for _, o := range strings.Split(m.VFSOptions, ",") {
				if strings.HasPrefix(o, "name=") || !v1Options[o] && !strings.Contains(o, "=") {
					ctrls = append(ctrls, o)
				}
			}
			slices.Sort(ctrls)
		}
		out = append(out, hierarchy{strings.Join(ctrls, ","), m.Mountpoint, m.Root})
	}
	return out, nil
}

// v1Options are a cgroup v1 mount's options that name no controller.
var v1Options = map[string]bool{"rw": true, "ro": true, "clone_children": true, "noprefix": true, "xattr": true, "cpuset_v2_mode": true}

// procsFiles are the cgroup.procs files to write to for joining the
// cgroups that a process's /proc/<pid>/cgroup lists, as seen through
// mounts. want is the container's own cgroup directory: the process must
// be in it (in the memory hierarchy, or the unified one on a unified host),
// or it is not the container's init.
func procsFiles(procCgroup []byte, mounts []hierarchy, want string) ([]string, error) {
	var files []string
	matched := false
	// On a unified host the memory controller is the unified hierarchy's.
	unified := !slices.ContainsFunc(mounts, func(h hierarchy) bool { return h.controllers == "memory" })
	for _, line := range strings.Split(strings.TrimSpace(string(procCgroup)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		slices.Sort(ctrls)
		key := strings.Join(ctrls, ",")
		dir := path.Clean(parts[2])
		i := slices.IndexFunc(mounts, func(h hierarchy) bool { return h.controllers == key })
		if i < 0 {
			continue // not mounted here: runc could not join it either
		}
		h := mounts[i]
		rel, ok := strings.CutPrefix(dir, h.root)
		if !ok || (h.root != "/" && rel != "" && !strings.HasPrefix(rel, "/")) {
			return nil, fmt.Errorf("cgroup %s is outside the mounted part (%s) of its hierarchy", dir, h.root)
		}
		files = append(files, filepath.Join(h.mountpoint, rel, "cgroup.procs"))
		if (key == "memory" || (key == "" && unified)) && dir == path.Clean("/"+want) {
			matched = true
		}
	}
	if !matched {
		return nil, fmt.Errorf("the process is not in the container's cgroup %s", want)
	}
	return files, nil
}

// readMounts reads this process's cgroup mounts.
func readMounts() ([]hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cgroupMounts(f)
}
