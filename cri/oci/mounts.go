package oci

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Root propagation modes runc understands.
const (
	propPrivate = "rprivate"
	propSlave   = "rslave"
	propShared  = "rshared"
)

// defaultMounts are the kernel filesystems every container sees. A
// privileged container gets /sys and its cgroup tree writable. In a user
// namespace of its own a pod cannot mount sysfs (its network namespace
// belongs to the node's user namespace), so /sys is the node's, bound
// read-only.
func defaultMounts(privileged, hostUsers bool) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs",
		Options: []string{"nosuid", "noexec", "nodev", sysMode}}
	if !hostUsers {
		sys = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
			Options: []string{"rbind", propPrivate, "nosuid", "noexec", "nodev", "ro"}}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc",
			Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
			Options: []string{"nosuid", "noexec", "nodev"}},
		sys,
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
			Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
	}
}

// hostFiles are the per-pod files the caller prepared on the host.
type hostFiles struct {
	resolvConf, hosts, hostname string
	shm                         string
	hostIPC                     bool
}

// fileMounts binds the pod's /dev/shm and /etc files. /dev/shm comes from
// the pod's shm (shared by its containers), the host's when the pod uses the
// node's IPC namespace, or a private tmpfs when the caller has none. The
// /etc files follow the container's read-only-rootfs setting, as users of
// readOnlyRootFilesystem expect.
func fileMounts(f hostFiles, readonly bool) []specs.Mount {
	var out []specs.Mount
	shmOpts := []string{"rbind", propPrivate, "nosuid", "nodev", "noexec", "rw"}
	switch {
	case f.shm != "":
		out = append(out, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: f.shm, Options: shmOpts})
	case f.hostIPC:
		out = append(out, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: shmOpts})
	default:
		out = append(out, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	mode := "rw"
	if readonly {
		mode = "ro"
	}
	for _, m := range []struct{ dst, src string }{
		{"/etc/resolv.conf", f.resolvConf},
		{"/etc/hosts", f.hosts},
		{"/etc/hostname", f.hostname},
	} {
		if m.src != "" {
			out = append(out, specs.Mount{Destination: m.dst, Type: "bind", Source: m.src,
				Options: []string{"rbind", propPrivate, mode}})
		}
	}
	return out
}

// criMounts converts the request's mounts, and returns the root propagation
// they need ("" when runc's default will do). A mount with image set binds
// imageSources[i], the caller's read-only mount of that image (or of its
// sub path), and must itself be read-only. Mounts are ordered parents
// first, so that /data is mounted before /data/sub whatever the request's
// order.
func criMounts(mounts []*runtimeapi.Mount, imageSources map[int]string, resolve func(string) (string, error)) ([]specs.Mount, string, error) {
	var out []specs.Mount
	rootProp := ""
	for i, m := range mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		dst := m.GetContainerPath()
		if !filepath.IsAbs(dst) {
			return nil, "", errdefs.InvalidArgument("%s.container_path: %q is not an absolute path", field, dst)
		}
		resolved, err := mountSource(m, field, imageSources[i], resolve)
		if err != nil {
			return nil, "", err
		}
		opts := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			opts = append(opts, propPrivate)
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			if err := propagates(resolved, false); err != nil {
				return nil, "", errdefs.InvalidArgument("%s.propagation HOST_TO_CONTAINER: %v", field, err)
			}
			opts = append(opts, propSlave)
			if rootProp != propShared {
				rootProp = propSlave
			}
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			if err := propagates(resolved, true); err != nil {
				return nil, "", errdefs.InvalidArgument("%s.propagation BIDIRECTIONAL: %v", field, err)
			}
			opts = append(opts, propShared)
			rootProp = propShared
		default:
			return nil, "", errdefs.InvalidArgument("%s.propagation: unknown mode %v", field, m.GetPropagation())
		}
		if m.GetReadonly() {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		if m.GetRecursiveReadOnly() {
			if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, "", errdefs.InvalidArgument(
					"%s.recursive_read_only requires readonly and private propagation", field)
			}
			opts = append(opts, "rro")
		}
		opts = append(opts, m.GetMountOptions()...)
		sm := specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: resolved, Options: opts}
		if sm.UIDMappings, sm.GIDMappings, err = mountIDMaps(m, field); err != nil {
			return nil, "", err
		}
		out = append(out, sm)
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int {
		return depth(a.Destination) - depth(b.Destination)
	})
	return out, rootProp, nil
}

// mountSource is the host path mount m binds: for an image volume the
// caller's mount of it (imageSource), else host_path with its symlinks
// resolved.
func mountSource(m *runtimeapi.Mount, field, imageSource string, resolve func(string) (string, error)) (string, error) {
	if m.GetImage() != nil {
		switch {
		case m.GetHostPath() != "":
			return "", errdefs.InvalidArgument("%s: host_path and image are exclusive", field)
		case !m.GetReadonly():
			return "", errdefs.InvalidArgument("%s.readonly: image volumes are read-only", field)
		case imageSource == "":
			return "", fmt.Errorf("%s.image: image %q is not mounted: %w",
				field, m.GetImage().GetImage(), errdefs.ErrUnimplemented)
		}
		return imageSource, nil
	}
	src := m.GetHostPath()
	if src == "" {
		return "", errdefs.InvalidArgument("%s.host_path is empty", field)
	}
	if !filepath.IsAbs(src) {
		return "", errdefs.InvalidArgument("%s.host_path: %q is not an absolute path", field, src)
	}
	// CRI: a symlinked host path mounts its target; a missing one is an error.
	resolved, err := resolve(src)
	if err != nil {
		return "", errdefs.InvalidArgument("%s.host_path: %w", field, err)
	}
	return resolved, nil
}

// mountIDMaps: a mount with uid and gid mappings becomes an idmapped bind
// mount (runc makes it), so files owned by host IDs show as the mapped
// container IDs.
func mountIDMaps(m *runtimeapi.Mount, field string) (uids, gids []specs.LinuxIDMapping, err error) {
	if len(m.GetUidMappings()) == 0 && len(m.GetGidMappings()) == 0 {
		return nil, nil, nil
	}
	if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
		return nil, nil, errdefs.InvalidArgument("%s: an idmapped mount needs both uid_mappings and gid_mappings", field)
	}
	conv := func(ms []*runtimeapi.IDMapping, name string) ([]specs.LinuxIDMapping, error) {
		out := make([]specs.LinuxIDMapping, 0, len(ms))
		for i, x := range ms {
			if x.GetLength() == 0 {
				return nil, errdefs.InvalidArgument("%s.%s[%d]: length is 0", field, name, i)
			}
			out = append(out, specs.LinuxIDMapping{ContainerID: x.GetContainerId(), HostID: x.GetHostId(), Size: x.GetLength()})
		}
		return out, nil
	}
	if uids, err = conv(m.GetUidMappings(), "uid_mappings"); err != nil {
		return nil, nil, err
	}
	if gids, err = conv(m.GetGidMappings(), "gid_mappings"); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// mergeMounts puts the runtime's mounts first and the request's after,
// dropping any runtime mount that a requested one replaces: same
// destination, or below a requested destination (mounting /dev drops
// /dev/pts and /dev/shm too).
func mergeMounts(runtimeMounts, requested []specs.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(runtimeMounts)+len(requested))
	for _, m := range runtimeMounts {
		if !coveredBy(m.Destination, requested) {
			out = append(out, m)
		}
	}
	return append(out, requested...)
}

func coveredBy(dst string, mounts []specs.Mount) bool {
	for _, m := range mounts {
		if m.Destination == dst || m.Destination != "/" && strings.HasPrefix(dst, m.Destination+"/") {
			return true
		}
	}
	return false
}

// propagates checks, as containerd does, that the host mount holding path
// passes mounts on: shared (or, unless bidirectional, a slave of a shared
// one). On a private mount the requested propagation would silently do
// nothing.
func propagates(path string, bidirectional bool) error {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		return fmt.Errorf("the mounts of %s: %w", path, err)
	}
	var holder *mountinfo.Info
	for _, m := range mounts {
		if holder == nil || len(m.Mountpoint) >= len(holder.Mountpoint) {
			holder = m
		}
	}
	if holder == nil {
		return fmt.Errorf("no mount holds %s", path)
	}
	shared := strings.Contains(holder.Optional, "shared:")
	slave := strings.Contains(holder.Optional, "master:")
	switch {
	case shared:
		return nil
	case slave && !bidirectional:
		return nil
	case bidirectional:
		return fmt.Errorf("%s is on mount %s, which is not shared (mount --make-rshared %s)", path, holder.Mountpoint, holder.Mountpoint)
	}
	return fmt.Errorf("%s is on mount %s, which is neither shared nor a slave (mount --make-rshared %s)", path, holder.Mountpoint, holder.Mountpoint)
}
