// Package cgroup computes where a pod's and a container's cgroups live for
// berth's two drivers (cgroupfs, systemd) on cgroup v1 and v2, finds the
// files that count OOM kills, and removes the parent cgroups berth made.
// runc creates and joins the cgroups; this package only names them.
package cgroup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/berth-project/berth/cri/errdefs"
)

// Driver is how cgroups are named and managed.
type Driver string

const (
	Cgroupfs Driver = "cgroupfs"
	Systemd  Driver = "systemd"
)

// Mountpoint is where the cgroup filesystems are mounted.
const Mountpoint = "/sys/fs/cgroup"

// DefaultParent is the parent of pods that do not name one.
func (d Driver) DefaultParent() string {
	if d == Systemd {
		return "berth.slice"
	}
	return "/berth"
}

// Validate checks a driver name.
func (d Driver) Validate() error {
	if d != Cgroupfs && d != Systemd {
		return errdefs.InvalidArgument("unknown cgroup driver %q (want cgroupfs or systemd)", d)
	}
	return nil
}

// CheckParent validates a pod's cgroup_parent for the driver.
func (d Driver) CheckParent(parent string) error {
	if strings.Contains(parent, "..") {
		return errdefs.InvalidArgument("cgroup_parent %q must not contain \"..\"", parent)
	}
	if d == Systemd && !strings.HasSuffix(parent, ".slice") {
		return errdefs.InvalidArgument("cgroup_parent %q: the systemd cgroup driver needs a slice name like kubepods.slice", parent)
	}
	if d == Cgroupfs && !strings.HasPrefix(parent, "/") {
		return errdefs.InvalidArgument("cgroup_parent %q: the cgroupfs cgroup driver needs an absolute path", parent)
	}
	return nil
}

// Path is the runc cgroupsPath of container id under parent. A systemd
// parent may be given as a path of slices ("/kubepods.slice/kubepods-
// burstable.slice", critest's "/test.slice"): systemd places a slice by
// its name alone, so only the last is used, as containerd does.
func (d Driver) Path(parent, id string) string {
	if d == Systemd {
		return path.Base(parent) + ":berth:" + id
	}
	return filepath.Join(parent, id)
}

// Dir is the filesystem path of a runc cgroupsPath, relative to a
// hierarchy's root.
func (d Driver) Dir(cgroupsPath string) string {
	if d != Systemd {
		return cgroupsPath
	}
	parts := strings.SplitN(cgroupsPath, ":", 3)
	if len(parts) != 3 {
		return cgroupsPath
	}
	return filepath.Join(expandSlice(parts[0]), parts[1]+"-"+parts[2]+".scope")
}

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice", as
// systemd nests slices.
func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/"
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		if prefix == "" {
			prefix = part
		} else {
			prefix += "-" + part
		}
		path += "/" + prefix + ".slice"
	}
	return path
}

// Unified reports whether the host runs cgroup v2 only.
//
// It is read once: a host does not change hierarchies under a running
// berthd, and containers are created often.
var Unified = sync.OnceValue(func() bool {
	_, err := os.Stat(filepath.Join(Mountpoint, "cgroup.controllers"))
	return err == nil
})

// OOMFiles are the files whose "oom_kill" counter tells whether the
// container at cgroupsPath was OOM-killed.
func (d Driver) OOMFiles(cgroupsPath string) []string {
	dir := d.Dir(cgroupsPath)
	if Unified() {
		return []string{filepath.Join(Mountpoint, dir, "memory.events")}
	}
	return []string{filepath.Join(Mountpoint, "memory", dir, "memory.oom_control")}
}

// hierarchies are the roots of every mounted cgroup hierarchy.
func hierarchies() []string {
	if Unified() {
		return []string{Mountpoint}
	}
	entries, err := os.ReadDir(Mountpoint)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(Mountpoint, e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// Missing returns the directories of parent (relative, outermost first)
// that do not exist yet in the memory hierarchy (or the unified one):
// those berth creates through runc and must remove again. With the
// systemd driver there are none: systemd makes the slices a scope names,
// they are its units, and removing their directories behind its back
// would leave it a unit without a cgroup (containerd leaves them too).
func (d Driver) Missing(parent string) []string {
	if d == Systemd {
		return nil
	}
	root := Mountpoint
	if !Unified() {
		root = filepath.Join(Mountpoint, "memory")
	}
	dir := d.Dir(parent)
	var missing []string
	for p := filepath.Clean(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Join(root, p)); os.IsNotExist(err) {
			missing = append(missing, p)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return len(missing[i]) < len(missing[j]) })
	return missing
}

// Remove deletes the given relative cgroup directories (innermost first)
// from every hierarchy. A directory still in use stays; that is reported.
func Remove(dirs []string) error {
	var failed []string
	for i := len(dirs) - 1; i >= 0; i-- {
		for _, h := range hierarchies() {
			p := filepath.Join(h, dirs[i])
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				failed = append(failed, p)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("cgroups still in use: %s", strings.Join(failed, ", "))
	}
	return nil
}
