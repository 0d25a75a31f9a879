package oci

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// denyAllDevices starts every device cgroup: runc then allows its own
// standard set (null, zero, full, random, urandom, tty, ptmx, pts) after it.
func denyAllDevices() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
}

// allowAllDevices is a privileged container's device cgroup.
func allowAllDevices() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}

// deviceFromPath describes the device node at host path (following
// symlinks, as /dev/disk/by-id/... are) to be created at containerPath.
func deviceFromPath(hostPath, containerPath string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(hostPath, &st); err != nil {
		return specs.LinuxDevice{}, &fs.PathError{Op: "stat", Path: hostPath, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("%s is not a device", hostPath)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     containerPath,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// allowRule lets the container use dev with the given access.
func allowRule(dev specs.LinuxDevice, access string) specs.LinuxDeviceCgroup {
	major, minor := dev.Major, dev.Minor
	return specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: access}
}

// requestedDevices converts the request's devices. A missing or non-device
// host path and bad permissions are InvalidArgument naming the field.
func requestedDevices(reqs []*runtimeapi.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for i, d := range reqs {
		field := fmt.Sprintf("devices[%d]", i)
		if d.GetHostPath() == "" {
			return nil, nil, errdefs.InvalidArgument("%s.host_path is empty", field)
		}
		dst := d.GetContainerPath()
		if dst == "" {
			dst = d.GetHostPath()
		}
		if !filepath.IsAbs(dst) {
			return nil, nil, errdefs.InvalidArgument("%s.container_path: %q is not an absolute path", field, dst)
		}
		access := d.GetPermissions()
		if access == "" {
			access = "rwm"
		}
		if strings.Trim(access, "rwm") != "" {
			return nil, nil, errdefs.InvalidArgument(
				"%s.permissions: %q is not made of r, w and m", field, d.GetPermissions())
		}
		dev, err := deviceFromPath(d.GetHostPath(), filepath.Clean(dst))
		if err != nil {
			return nil, nil, errdefs.InvalidArgument("%s.host_path: %w", field, err)
		}
		devs = append(devs, dev)
		rules = append(rules, allowRule(dev, access))
	}
	return devs, rules, nil
}

// skippedHostDevs are entries of /dev a privileged container does not copy:
// runc sets up its own pts, console and ptmx, and the rest are mounts.
var skippedHostDevs = map[string]bool{
	"pts": true, "shm": true, "mqueue": true, "fd": true, "console": true, "ptmx": true,
	".lxc": true, ".lxd-mounts": true, ".udev": true,
}

// hostDevices lists the device nodes under dir (the host's /dev) for a
// privileged container, at the same paths. Entries that cannot be read are
// skipped: a privileged container gets what the host can show it.
func hostDevices(dir string) []specs.LinuxDevice {
	var out []specs.LinuxDevice
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir
			}
			return nil
		}
		if p != dir && skippedHostDevs[d.Name()] && filepath.Dir(p) == dir {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || d.Type()&fs.ModeDevice == 0 {
			return nil // symlinks are skipped too: their targets are listed
		}
		dev, err := deviceFromPath(p, p)
		if err != nil {
			return nil
		}
		out = append(out, dev)
		return nil
	})
	return out
}

// mergeDevices appends extra devices whose paths are not in devs yet.
func mergeDevices(devs, extra []specs.LinuxDevice) []specs.LinuxDevice {
	seen := make(map[string]bool, len(devs))
	for _, d := range devs {
		seen[d.Path] = true
	}
	for _, d := range extra {
		if !seen[d.Path] {
			seen[d.Path] = true
			devs = append(devs, d)
		}
	}
	return devs
}
