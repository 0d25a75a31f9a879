package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/upstream"
)

// volumeFiles supplies what configMap, secret and projected volumes hold
// (the upstream plugin; nil without one, and such volumes fail).
type volumeFiles interface {
	VolumeFiles(ctx context.Context, pod *v1.Pod, src v1.VolumeProjection) ([]upstream.File, error)
}

// objectData supplies the configMaps and secrets an environment reads (the
// upstream plugin; nil without one, and such references fail).
type objectData interface {
	ObjectData(ctx context.Context, pod *v1.Pod, kind upstream.ObjectKind, name string) (map[string][]byte, error)
}

// envObjects reads what a container's environment refers to, each object
// once.
func (w *worker) envObjects(ctx context.Context, pod *v1.Pod, c *v1.Container) (map[objectRef]map[string][]byte, error) {
	refs := envObjects(c)
	if len(refs) == 0 {
		return nil, nil
	}
	if w.m.cfg.Objects == nil {
		return nil, fmt.Errorf("container %q: the environment reads %s, and no upstream supplies it", c.Name, refs[0])
	}
	out := make(map[objectRef]map[string][]byte, len(refs))
	for _, r := range refs {
		data, err := w.m.cfg.Objects.ObjectData(ctx, pod, r.kind, r.name)
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", c.Name, err)
		}
		out[r] = data
	}
	return out, nil
}

// projection turns a configMap, secret or projected volume into the
// sources and default mode of a projected one.
func projection(v v1.Volume) ([]v1.VolumeProjection, os.FileMode) {
	mode := func(m *int32) os.FileMode {
		if m == nil {
			return 0o644
		}
		return os.FileMode(*m)
	}
	switch {
	case v.ConfigMap != nil:
		return []v1.VolumeProjection{{ConfigMap: &v1.ConfigMapProjection{
			LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items, Optional: v.ConfigMap.Optional}}}, mode(v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		return []v1.VolumeProjection{{Secret: &v1.SecretProjection{
			LocalObjectReference: v1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items, Optional: v.Secret.Optional}}}, mode(v.Secret.DefaultMode)
	default:
		return v.Projected.Sources, mode(v.Projected.DefaultMode)
	}
}

// writeProjected fills the volume and swaps it in atomically: readers see
// the old files or the new ones, never a mix, as kubelet's volumes behave.
// Unchanged content is not rewritten. The volume is a tmpfs, so secrets
// and tokens never reach the disk.
func (w *worker) writeProjected(ctx context.Context, pod *v1.Pod, v v1.Volume) error {
	sources, mode := projection(v)
	var files []upstream.File
	for _, src := range sources {
		var got []upstream.File
		var err error
		switch {
		case src.DownwardAPI != nil:
			got, err = w.downwardFiles(pod, src.DownwardAPI.Items)
		case w.m.cfg.VolumeFiles == nil:
			err = errors.New("unsupported volume source (no upstream supplies it)")
		default:
			got, err = w.m.cfg.VolumeFiles.VolumeFiles(ctx, pod, src)
		}
		if err != nil {
			return err
		}
		files = append(files, got...)
	}
	for i := range files {
		if files[i].Mode == 0 {
			files[i].Mode = mode
		}
		if p := files[i].Path; p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") {
			return fmt.Errorf("file path %q must be relative and stay in the volume", p)
		}
	}
	dir := w.m.volumePath(pod.UID, "projected", v.Name)
	if err := w.mountVolumeTmpfs(dir); err != nil {
		return err
	}
	return writeAtomically(dir, files)
}

// volumeRefresh is how often a running pod's volumes from the upstream
// are brought up to date.
const volumeRefresh = 30 * time.Second

// refreshVolumes brings a running pod's configMap, secret and projected
// volumes up to date (kubelet's periodic volume sync); a failure keeps the
// files as they are.
func (w *worker) refreshVolumes(ctx context.Context, pod *v1.Pod) {
	// Passes come with every container event and probe change: reading
	// the volumes back on each would be work for nothing.
	now := w.m.clock.Now()
	if now.Sub(w.volumesRefreshed) < volumeRefresh {
		return
	}
	w.volumesRefreshed = now
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap == nil && v.Secret == nil && v.Projected == nil {
			continue
		}
		if err := w.writeProjected(ctx, pod, v); err != nil && ctx.Err() == nil {
			w.m.cfg.Log.Warn("refresh volume", "pod", w.key, "volume", v.Name, "err", err)
		}
	}
}

func (w *worker) mountVolumeTmpfs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		return nil
	}
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size="+strconv.FormatInt(w.m.memoryCapacity, 10))
}

// dataLink is the symlink to the current version's directory; each file's
// top-level name links through it.
const dataLink = "..data"

// writeAtomically writes files into a new hidden directory of dir, then
// renames a symlink over dataLink to switch every file at once.
func writeAtomically(dir string, files []upstream.File) error {
	if unchanged(dir, files) {
		return nil
	}
	version, err := os.MkdirTemp(dir, "..v")
	if err != nil {
		return err
	}
	if err := os.Chmod(version, 0o755); err != nil {
		return err
	}
	tops := map[string]bool{}
	for _, f := range files {
		p, err := securejoin.SecureJoin(version, f.Path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			return err
		}
		tops[strings.SplitN(filepath.Clean(f.Path), "/", 2)[0]] = true
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	tmp := filepath.Join(dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return err
	}
	for top := range tops {
		link := filepath.Join(dir, top)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, top) {
			continue
		}
		if err := os.Symlink(filepath.Join(dataLink, top), link); err != nil {
			return err
		}
	}
	// What the old version had and the new one has not goes.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, "..") && !tops[name] {
			os.Remove(filepath.Join(dir, name))
		}
	}
	if old != "" && old != filepath.Base(version) {
		os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// unchanged says whether the current version holds exactly files.
func unchanged(dir string, files []upstream.File) bool {
	cur, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return false
	}
	base := filepath.Join(dir, cur)
	n := 0
	err = filepath.WalkDir(base, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil || n != len(files) {
		return false
	}
	for _, f := range files {
		p := filepath.Join(base, filepath.Clean(f.Path))
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode().Perm() != f.Mode.Perm() {
			return false
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, f.Data) {
			return false
		}
	}
	return true
}
