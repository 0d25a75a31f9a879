package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/upstream"
)

// volumesDir is where a pod's emptyDir and downwardAPI volumes live.
func (m *Manager) volumePath(uid types.UID, kind, name string) string {
	return filepath.Join(m.cfg.PodDir, string(uid), "volumes", kind, name)
}

// prepareVolumes makes the pod's volumes before its sandbox exists:
// emptyDirs (a size-limited tmpfs for medium Memory), hostPaths checked or
// created per their type, downwardAPI files written, configMap, secret and
// projected volumes filled from the upstream (projected.go).
func (w *worker) prepareVolumes(ctx context.Context, pod *v1.Pod) error {
	for _, v := range pod.Spec.Volumes {
		var err error
		switch {
		case v.EmptyDir != nil:
			err = w.prepareEmptyDir(pod.UID, v.Name, v.EmptyDir)
		case v.HostPath != nil:
			err = checkHostPath(v.HostPath)
		case v.DownwardAPI != nil:
			err = w.writeDownwardAPI(pod, v.Name, v.DownwardAPI)
		case v.ConfigMap != nil || v.Secret != nil || v.Projected != nil:
			err = w.writeProjected(ctx, pod, v)
		default:
			err = errors.New("unsupported volume source")
		}
		if err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	return nil
}

func (w *worker) prepareEmptyDir(uid types.UID, name string, src *v1.EmptyDirVolumeSource) error {
	dir := w.m.volumePath(uid, "empty-dir", name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// Anyone in the pod may write, whatever user it runs as, as kubelet has it.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	if src.Medium != v1.StorageMediumMemory {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return nil // mounted by an earlier pass
	}
	size := w.m.memoryCapacity
	if src.SizeLimit != nil && !src.SizeLimit.IsZero() {
		size = src.SizeLimit.Value()
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	return nil
}

// checkHostPath applies the hostPath type: the *OrCreate types make what is
// missing, the others require it to exist as that kind of file.
func checkHostPath(hp *v1.HostPathVolumeSource) error {
	typ := v1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, err := os.Stat(hp.Path)
	switch typ {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if errors.Is(err, fs.ErrNotExist) {
			return os.MkdirAll(hp.Path, 0o755)
		}
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("hostPath %s exists and is not a directory", hp.Path)
		}
		return err
	case v1.HostPathFileOrCreate:
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath %s exists and is not a file", hp.Path)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("hostPath %s (type %s): %w", hp.Path, typ, err)
	}
	ok := map[v1.HostPathType]bool{
		v1.HostPathDirectory: fi.IsDir(),
		v1.HostPathFile:      fi.Mode().IsRegular(),
		v1.HostPathSocket:    fi.Mode()&fs.ModeSocket != 0,
		v1.HostPathCharDev:   fi.Mode()&fs.ModeCharDevice != 0,
		v1.HostPathBlockDev:  fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0,
	}[typ]
	if !ok {
		return fmt.Errorf("hostPath %s is not of type %s", hp.Path, typ)
	}
	return nil
}

// writeDownwardAPI writes the volume's files from the pod's metadata, as
// one atomic version (see writeAtomically).
func (w *worker) writeDownwardAPI(pod *v1.Pod, name string, src *v1.DownwardAPIVolumeSource) error {
	dir := w.m.volumePath(pod.UID, "downward-api", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if src.DefaultMode != nil {
		mode = os.FileMode(*src.DefaultMode)
	}
	files, err := w.downwardFiles(pod, src.Items)
	if err != nil {
		return err
	}
	for i := range files {
		if files[i].Mode == 0 {
			files[i].Mode = mode
		}
	}
	return writeAtomically(dir, files)
}

// downwardFiles are the files of downwardAPI items (Mode 0: the
// volume's default).
func (w *worker) downwardFiles(pod *v1.Pod, items []v1.DownwardAPIVolumeFile) ([]upstream.File, error) {
	var out []upstream.File
	for _, item := range items {
		var val string
		var err error
		switch {
		case item.FieldRef != nil:
			val, err = fieldValue(pod, item.FieldRef.FieldPath, podFacts{})
		case item.ResourceFieldRef != nil:
			facts := podFacts{}
			facts.nodeCPU.SetMilli(w.m.cpuCapacity)
			facts.nodeMemory.Set(w.m.memoryCapacity)
			val, err = resourceValue(pod, "", item.ResourceFieldRef, facts)
		}
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", item.Path, err)
		}
		f := upstream.File{Path: item.Path, Data: []byte(val)}
		if item.Mode != nil {
			f.Mode = os.FileMode(*item.Mode)
		}
		out = append(out, f)
	}
	return out, nil
}

// containerMounts binds the container's volume mounts.
func (w *worker) containerMounts(pod *v1.Pod, c *v1.Container) ([]*runtimeapi.Mount, error) {
	vols := map[string]v1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	var out []*runtimeapi.Mount
	for i, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		var src string
		readOnly := vm.ReadOnly
		switch {
		case v.EmptyDir != nil:
			src = w.m.volumePath(pod.UID, "empty-dir", v.Name)
		case v.HostPath != nil:
			src = v.HostPath.Path
		case v.DownwardAPI != nil:
			src, readOnly = w.m.volumePath(pod.UID, "downward-api", v.Name), true
		case v.ConfigMap != nil || v.Secret != nil || v.Projected != nil:
			src, readOnly = w.m.volumePath(pod.UID, "projected", v.Name), true
		default:
			return nil, fmt.Errorf("volume %q: unsupported source", v.Name)
		}
		if vm.SubPath != "" {
			bound, err := w.bindSubPath(pod.UID, src, vm.SubPath, filepath.Join(c.Name, strconv.Itoa(i)))
			if err != nil {
				return nil, fmt.Errorf("volumeMount %q subPath %q: %w", vm.Name, vm.SubPath, err)
			}
			src = bound
		}
		m := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: src, Readonly: readOnly}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case v1.MountPropagationHostToContainer:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case v1.MountPropagationBidirectional:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// bindSubPath binds the sub path of a volume at a place of the agent's
// (<pod>/volume-subpaths/<container>/<mount index>) and returns that
// place. The sub path is resolved inside the volume without following
// anything out of it, and bound through the resolved handle, so a pod
// that swaps a path component for a symlink meanwhile cannot make the
// mount escape. A missing sub path is created as a directory, as kubelet
// does.
func (w *worker) bindSubPath(uid types.UID, volume, subPath, key string) (string, error) {
	h, err := pathrs.OpenInRoot(volume, subPath)
	if errors.Is(err, fs.ErrNotExist) {
		root, err := os.OpenFile(volume, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		h, err = pathrs.MkdirAllHandle(root, subPath, 0o755)
		root.Close()
		if err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return "", err
	}
	target := filepath.Join(w.m.cfg.PodDir, string(uid), "volume-subpaths", key)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	// A restarted container binds afresh: drop what an earlier start bound.
	if mounted, _ := mountinfo.Mounted(target); mounted {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return "", fmt.Errorf("unbind old sub path: %w", err)
		}
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if f, ferr := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644); ferr == nil {
		err = f.Close()
	} else {
		err = ferr
	}
	if err != nil {
		return "", err
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", h.Fd()), target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind: %w", err)
	}
	return target, nil
}

// removeVolumes unmounts what the agent mounted for the pod (memory-backed
// emptyDirs, sub path binds) and deletes its directory; hostPaths are the
// node's and stay. Nothing is deleted while anything below is mounted.
func (m *Manager) removeVolumes(uid types.UID) error {
	if m.cfg.PodDir == "" {
		return nil
	}
	return removeTree(filepath.Join(m.cfg.PodDir, string(uid)))
}

// releaseVolumes removes only the volumes of a pod that stays (evicted):
// its termination messages and eviction record are kept.
func (m *Manager) releaseVolumes(uid types.UID) error {
	if m.cfg.PodDir == "" {
		return nil
	}
	dir := filepath.Join(m.cfg.PodDir, string(uid), "volumes")
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	m.cfg.Log.Info("evicted pod: removing its volumes", "uid", uid)
	return removeTree(dir)
}

// removeTree unmounts everything below dir, deepest first, then deletes it.
func removeTree(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	if left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); err != nil || len(left) > 0 {
		return fmt.Errorf("pod volumes still mounted below %s", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pod volumes: %w", err)
	}
	return nil
}
