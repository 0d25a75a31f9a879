package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// Names inside a container's directory that MountRootfs owns.
const (
	rootfsName = "rootfs"
	upperName  = "upper"
	workName   = "work"
	lowerName  = "lower" // the empty lower layer of an image without layers
	idmapName  = "idmap" // idmapped layers are attached below it while the overlay is made
)

// LayerDirs returns the absolute unpacked layer directories of the image
// ref names (any form Get accepts; normally its ID), bottom to top. A layer
// listed twice appears once, at its topmost position: the lower copy is
// entirely shadowed by the upper one, and overlayfs refuses to stack a
// directory twice. Errors: errdefs.ErrNotFound for an unknown image,
// errdefs.ErrFailedPrecondition when a layer directory has gone missing
// (re-import the image).
func (s *Store) LayerDirs(id string) ([]string, error) {
	s.mu.Lock()
	rec, _, err := s.resolveLocked(id)
	var diffIDs []string
	if err == nil {
		diffIDs = slices.Clone(rec.Image.DiffIDs)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var dirs []string
	seen := map[string]bool{}
	for _, d := range slices.Backward(diffIDs) {
		if seen[d] {
			continue
		}
		seen[d] = true
		dir := s.layerDir(d)
		if !exists(dir) {
			return nil, errdefs.FailedPrecondition("image %s: layer %s is missing from the store", rec.Image.ID, d)
		}
		dirs = append(dirs, dir)
	}
	slices.Reverse(dirs)
	return dirs, nil
}

// IDMap shifts a rootfs into a user namespace: the layers, owned by host
// IDs, are seen through idmapped mounts so that a file owned by host root
// belongs to the namespace's root, and the container's own writes land in
// the upper layer as the host IDs they map to (its root directory owned by
// UID:GID, the host IDs of the namespace's root).
type IDMap struct {
	UserNS   string // a user namespace file, e.g. /proc/<pid>/ns/user
	UID, GID uint32
}

// MountRootfs mounts the image's root file system for a container at
// dir/rootfs: an overlay of the image's layers (read-only) with dir/upper
// taking the container's writes (dir/work is overlayfs's scratch space),
// shifted into a user namespace when idmap is set. It creates the
// directories as needed and returns dir/rootfs. If dir/rootfs is already a
// mount point it returns at once, so a restarted daemon can call it again
// for a container it finds. The mount lives until UnmountRootfs; the layers
// it uses must be passed in inUse to Remove and Prune meanwhile.
func (s *Store) MountRootfs(imageID, dir string, idmap *IDMap) (rootfs string, err error) {
	layers, err := s.LayerDirs(imageID)
	if err != nil {
		return "", err
	}
	rootfs = filepath.Join(dir, rootfsName)
	if mounted, err := mountinfo.Mounted(rootfs); err == nil && mounted {
		return rootfs, nil
	}
	upper, work := filepath.Join(dir, upperName), filepath.Join(dir, workName)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o711}, {upper, 0o755}, {work, 0o700}, {rootfs, 0o755}} {
		if err := os.Mkdir(d.path, d.mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("mount rootfs: %w", err)
		}
	}
	if idmap != nil {
		if err := os.Chown(upper, int(idmap.UID), int(idmap.GID)); err != nil {
			return "", fmt.Errorf("mount rootfs: %w", err)
		}
	}
	if len(layers) == 0 {
		// overlayfs needs a lower layer; an empty one adds nothing.
		empty := filepath.Join(dir, lowerName)
		if err := os.Mkdir(empty, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("mount rootfs: %w", err)
		}
		layers = []string{empty}
	}
	slices.Reverse(layers) // overlayfs lists the top layer first
	if idmap != nil {
		mapped, detach, err := attachIDMapped(layers, filepath.Join(dir, idmapName), idmap)
		if err != nil {
			return "", fmt.Errorf("mount rootfs at %s: %w", rootfs, err)
		}
		// The overlay keeps private clones of its layers: the attached
		// ones are needed only while it is made.
		defer detach()
		layers = mapped
	}
	opts, done, err := overlayOptions(layers, upper, work)
	if err != nil {
		return "", fmt.Errorf("mount rootfs at %s: %w", rootfs, err)
	}
	defer done()
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		if idmap != nil && errors.Is(err, unix.EINVAL) {
			return "", errdefs.FailedPrecondition("mount rootfs at %s: overlayfs refused the idmapped layers a pod with its own user namespace needs (it takes them from Linux 5.19): %v", rootfs, err)
		}
		return "", fmt.Errorf("mount rootfs at %s (%d layers): %w", rootfs, len(layers), err)
	}
	return rootfs, nil
}

// MountReadOnly mounts the image's layers read-only at dir/rootfs, for use
// as an image volume: an overlay with no upper layer, so nothing can be
// written through it. An empty dir/lower is stacked at the bottom, since
// overlayfs without an upper layer wants at least two lower ones. Like
// MountRootfs it creates the directories, returns at once when dir/rootfs
// is already mounted, and lasts until UnmountRootfs(dir); the layers must be
// passed in inUse to Remove and Prune meanwhile.
func (s *Store) MountReadOnly(imageID, dir string) (root string, err error) {
	layers, err := s.LayerDirs(imageID)
	if err != nil {
		return "", err
	}
	root = filepath.Join(dir, rootfsName)
	if mounted, err := mountinfo.Mounted(root); err == nil && mounted {
		return root, nil
	}
	empty := filepath.Join(dir, lowerName)
	for _, d := range []string{dir, empty, root} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("mount image %s read-only: %w", imageID, err)
		}
	}
	layers = append([]string{empty}, layers...)
	slices.Reverse(layers) // overlayfs lists the top layer first
	opts, done, err := overlayOptions(layers, "", "")
	if err != nil {
		return "", fmt.Errorf("mount image %s read-only at %s: %w", imageID, root, err)
	}
	defer done()
	if err := unix.Mount("overlay", root, "overlay", unix.MS_RDONLY, opts); err != nil {
		return "", fmt.Errorf("mount image %s read-only at %s (%d layers): %w", imageID, root, len(layers)-1, err)
	}
	return root, nil
}

// overlayOptions builds the mount data. The kernel takes at most one page
// of it and splits it at ',' and ':', so when the plain paths do not fit or
// contain those characters, each directory is opened and named by its short
// /proc/self/fd path instead (resolved by the kernel during mount); done
// closes those descriptors. With upper == "" the overlay is read-only and
// work is ignored.
func overlayOptions(lower []string, upper, work string) (opts string, done func(), err error) {
	format := func(lower []string, upper, work string) string {
		if upper == "" {
			return "lowerdir=" + strings.Join(lower, ":")
		}
		return "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work
	}
	plain := format(lower, upper, work)
	if len(plain) < unix.Getpagesize() &&
		!strings.ContainsAny(strings.Join(append(slices.Clone(lower), upper, work), ""), ",:\\") {
		return plain, func() {}, nil
	}
	var fds []int
	done = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	byFD := func(p string) (string, error) {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("open %s: %w", p, err)
		}
		fds = append(fds, fd)
		return "/proc/self/fd/" + strconv.Itoa(fd), nil
	}
	short := make([]string, len(lower))
	for i, p := range lower {
		if short[i], err = byFD(p); err != nil {
			done()
			return "", nil, err
		}
	}
	var u, w string
	if upper != "" {
		if u, err = byFD(upper); err != nil {
			done()
			return "", nil, err
		}
		if w, err = byFD(work); err != nil {
			done()
			return "", nil, err
		}
	}
	opts = format(short, u, w)
	if len(opts) >= unix.Getpagesize() {
		done()
		return "", nil, fmt.Errorf("too many layers (%d) for one overlay mount", len(lower))
	}
	return opts, done, nil
}

// attachIDMapped attaches an idmapped clone of each layer at under/<i>
// and returns their paths, in the order given, and detach, which undoes it.
// Attached, not detached clones: overlayfs before Linux 6.15 takes only
// layers mounted in the caller's mount namespace. A clone left attached by
// a crash is detached by the next MountRootfs or UnmountRootfs of the
// directory.
func attachIDMapped(layers []string, under string, idmap *IDMap) (mapped []string, detach func(), err error) {
	if err := detachIDMapped(under); err != nil {
		return nil, nil, err
	}
	if err := os.Mkdir(under, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, err
	}
	detach = func() { detachIDMapped(under) }
	userns, err := unix.Open(idmap.UserNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open user namespace: %w", err)
	}
	defer unix.Close(userns)
	attach := func(layer, target string) error {
		fd, err := unix.OpenTree(unix.AT_FDCWD, layer, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone mount of %s: %w", layer, err)
		}
		defer unix.Close(fd)
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
				return errdefs.FailedPrecondition("idmapped mount of %s: the kernel or the file system of berth's image store does not support idmapped mounts, which a pod with its own user namespace needs: %v", layer, err)
			}
			return fmt.Errorf("idmap %s: %w", layer, err)
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attach idmapped %s at %s: %w", layer, target, err)
		}
		return nil
	}
	for i, layer := range layers {
		target := filepath.Join(under, strconv.Itoa(i))
		if err := attach(layer, target); err != nil {
			detach()
			return nil, nil, err
		}
		mapped = append(mapped, target)
	}
	return mapped, detach, nil
}

// detachIDMapped detaches what attachIDMapped attached below under and
// removes the directories. It only ever removes empty directories, so a
// layer still attached is never deleted through its mount.
func detachIDMapped(under string) error {
	entries, err := os.ReadDir(under)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach idmapped layers: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(under, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("detach idmapped layer %s: %w", p, err))
			continue
		}
		if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("detach idmapped layer: %w", &fs.PathError{Op: "rmdir", Path: p, Err: err}))
		}
	}
	if len(errs) == 0 {
		if err := unix.Rmdir(under); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, &fs.PathError{Op: "rmdir", Path: under, Err: err})
		}
	}
	return errors.Join(errs...)
}

// UnmountRootfs undoes MountRootfs: it unmounts dir/rootfs (detaching it
// lazily if it is busy, e.g. a process still has a file open) and removes
// dir/rootfs, dir/upper, dir/work and dir/lower, leaving dir itself to its
// owner. It is idempotent: nothing mounted, or nothing there, is success. It
// never removes the directories while something is still mounted on rootfs,
// since that would delete through the mount.
func UnmountRootfs(dir string) error {
	rootfs := filepath.Join(dir, rootfsName)
	for range 8 { // mounts may be stacked; each round removes one
		err := unix.Unmount(rootfs, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(rootfs, unix.MNT_DETACH)
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point, or absent
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", rootfs, err)
		}
	}
	mounted, err := mountinfo.Mounted(rootfs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unmount %s: %w", rootfs, err)
	}
	if mounted {
		return fmt.Errorf("unmount %s: still mounted", rootfs)
	}
	if err := detachIDMapped(filepath.Join(dir, idmapName)); err != nil {
		return err
	}
	var errs []error
	for _, name := range []string{rootfsName, upperName, workName, lowerName} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
