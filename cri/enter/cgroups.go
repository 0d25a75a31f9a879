package enter

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
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

// cgroupMounts reads the cgroup hierarchies mounted in this process's
// mount namespace from mountinfo.
func cgroupMounts(mountinfo []byte) []hierarchy {
	var out []hierarchy
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, hierarchy{"", unescape(f[4]), f[3]})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				if o == "rw" || o == "ro" || (strings.Contains(o, "=") && !strings.HasPrefix(o, "name=")) {
					continue
				}
				if slices.Contains([]string{"clone_children", "noprefix", "xattr", "cpuset_v2_mode", "favordynmods", "nsdelegate", "memory_recursiveprot", "memory_localevents"}, o) {
					continue
				}
				ctrls = append(ctrls, o)
			}
			slices.Sort(ctrls)
			out = append(out, hierarchy{strings.Join(ctrls, ","), unescape(f[4]), f[3]})
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

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
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return cgroupMounts(data), nil
}
