package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountRootfs mounts and registers the unmount, so a failing test never
// leaves a mount behind.
func mountRootfs(t *testing.T, s *Store, ref, dir string) string {
	t.Helper()
	t.Cleanup(func() {
		if err := UnmountRootfs(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	rootfs, err := s.MountRootfs(ref, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rootfs
}

func mountCount(t *testing.T, p string) int {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p))
	if err != nil {
		t.Fatal(err)
	}
	return len(mounts)
}

func TestMountRootfsAppliesWhiteouts(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, testConfig, baseLayer(t), upperLayer(t, "added\n"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"m:1": img}))
	dir := filepath.Join(t.TempDir(), "ctr")
	rootfs := mountRootfs(t, s, "m:1", dir)
	if rootfs != filepath.Join(dir, "rootfs") {
		t.Errorf("rootfs = %s", rootfs)
	}

	for p, want := range map[string]string{
		"etc/motd":  "motd\n",
		"etc/added": "added\n",
		"opq/new":   "new\n",
		"bin/tool":  "#!/bin/tool\n", // through the layer's own symlink
	} {
		if b, err := os.ReadFile(filepath.Join(rootfs, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"etc/hello", "opq/old"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s visible in the rootfs (err %v); the upper layer deletes it", p, err)
		}
	}

	// Writes land in the container's upper dir, not in the shared layers.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/motd"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "upper/etc/motd")); string(b) != "changed" {
		t.Errorf("upper/etc/motd = %q", b)
	}
	dirs, _ := s.LayerDirs("m:1")
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "etc/motd")); string(b) != "motd\n" {
		t.Errorf("the shared layer was modified: %q", b)
	}

	// Mounting again is a no-op.
	if again, err := s.MountRootfs("m:1", dir, nil); err != nil || again != rootfs {
		t.Fatalf("second MountRootfs = %s, %v", again, err)
	}
	if n := mountCount(t, rootfs); n != 1 {
		t.Errorf("%d mounts on rootfs after mounting twice, want 1", n)
	}

	if err := UnmountRootfs(dir); err != nil {
		t.Fatal(err)
	}
	if n := mountCount(t, rootfs); n != 0 {
		t.Errorf("rootfs still mounted")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("container dir holds %v after UnmountRootfs", names)
	}
	if err := UnmountRootfs(dir); err != nil {
		t.Errorf("second UnmountRootfs: %v", err)
	}
	if err := UnmountRootfs(filepath.Join(t.TempDir(), "never-existed")); err != nil {
		t.Errorf("UnmountRootfs of a missing dir: %v", err)
	}
	// The layers are untouched by the unmount and removal.
	if _, err := os.Stat(filepath.Join(dirs[0], "etc/motd")); err != nil {
		t.Errorf("layer content gone after UnmountRootfs: %v", err)
	}
}

func TestMountRootfsIDMapped(t *testing.T) {
	requiresRoot(t)
	const hostRoot = 300000
	// A user namespace mapping its root to hostRoot, held by a process.
	holder := exec.Command("sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostRoot, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostRoot, Size: 65536}},
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })

	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"m:1": buildImage(t, testConfig, baseLayer(t))}))
	dir := filepath.Join(t.TempDir(), "ctr")
	t.Cleanup(func() {
		if err := UnmountRootfs(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	idmap := &IDMap{UserNS: fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid), UID: hostRoot, GID: hostRoot}
	rootfs, err := s.MountRootfs("m:1", dir, idmap)
	if err != nil {
		t.Fatal(err)
	}
	owner := func(p string) string {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	want := fmt.Sprintf("%d:%d", hostRoot, hostRoot)
	// The layer's root-owned files and the rootfs itself belong to the
	// namespace's root; the layer on disk is unchanged.
	for _, p := range []string{rootfs, filepath.Join(rootfs, "etc/motd")} {
		if got := owner(p); got != want {
			t.Errorf("%s owned by %s, want %s", p, got, want)
		}
	}
	dirs, _ := s.LayerDirs("m:1")
	if got := owner(filepath.Join(dirs[0], "etc/motd")); got != "0:0" {
		t.Errorf("layer file owned by %s on disk, want 0:0", got)
	}
	// Only the overlay remains mounted: the idmapped layer clones are gone,
	// and so are the directories they were attached at.
	if n := mountCount(t, rootfs); n != 1 {
		t.Errorf("%d mounts on rootfs, want 1", n)
	}
	if names := dirNames(t, dir); slices.Contains(names, idmapName) {
		t.Errorf("container dir holds %v after MountRootfs, want no %s", names, idmapName)
	}
	if err := UnmountRootfs(dir); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("container dir holds %v after UnmountRootfs", names)
	}
}

// A berthd killed while it made an idmapped rootfs leaves layer clones
// attached in the container's directory: undoing the rootfs detaches them
// and never deletes a layer through one.
func TestUnmountRootfsDetachesLeftIDMappedLayers(t *testing.T) {
	requiresRoot(t)
	holder := exec.Command("sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"m:1": buildImage(t, testConfig, baseLayer(t))}))
	dirs, err := s.LayerDirs("m:1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ctr")
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	idmap := &IDMap{UserNS: fmt.Sprintf("/proc/%d/ns/user", holder.Process.Pid), UID: 300000, GID: 300000}
	mapped, _, err := attachIDMapped(dirs, filepath.Join(dir, idmapName), idmap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mapped[0], unix.MNT_DETACH) })
	if n := mountCount(t, mapped[0]); n != 1 {
		t.Fatalf("%d mounts at %s, want the attached clone", n, mapped[0])
	}
	if err := UnmountRootfs(dir); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("container dir holds %v after UnmountRootfs", names)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "etc/motd")); err != nil {
		t.Errorf("layer content gone after UnmountRootfs: %v", err)
	}
}

func TestUnmountRootfsDetachesBusyMount(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"busy:1": buildImage(t, v1.Config{}, baseLayer(t))}))
	dir := filepath.Join(t.TempDir(), "ctr")
	rootfs := mountRootfs(t, s, "busy:1", dir)
	// An open directory keeps the mount busy.
	f, err := os.Open(filepath.Join(rootfs, "etc"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := UnmountRootfs(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rootfs dir remains: %v", err)
	}
}

func TestMountRootfsWithoutLayers(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"scratch:1": buildImage(t, v1.Config{Cmd: []string{"/app"}})}))
	dir := filepath.Join(t.TempDir(), "ctr")
	rootfs := mountRootfs(t, s, "scratch:1", dir)
	if names := dirNames(t, rootfs); len(names) != 0 {
		t.Errorf("rootfs of an image without layers holds %v", names)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "x"), []byte("x"), 0o644); err != nil {
		t.Errorf("rootfs not writable: %v", err)
	}
}

// Many layers with long paths exceed the one-page limit on mount data;
// MountRootfs must still mount them.
func TestMountRootfsManyLayers(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	var layers []v1.Layer
	const n = 60
	for i := range n {
		layers = append(layers, layerOf(t, file(fmt.Sprintf("f%02d", i), fmt.Sprint(i))))
	}
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"many:1": buildImage(t, v1.Config{}, layers...)}))
	dirs, _ := s.LayerDirs("many:1")
	if plain := len(strings.Join(dirs, ":")); plain < unix.Getpagesize() {
		t.Fatalf("test setup: layer paths take %d bytes, not enough to exceed a page", plain)
	}
	rootfs := mountRootfs(t, s, "many:1", filepath.Join(t.TempDir(), "ctr"))
	for i := range n {
		if b, err := os.ReadFile(filepath.Join(rootfs, fmt.Sprintf("f%02d", i))); err != nil || string(b) != fmt.Sprint(i) {
			t.Fatalf("f%02d = %q, %v", i, b, err)
		}
	}
}

func TestMountReadOnly(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{
		"m:1":   buildImage(t, testConfig, baseLayer(t), upperLayer(t, "added\n")),
		"one:1": buildImage(t, testConfig, baseLayer(t)),
	}))
	for _, ref := range []string{"m:1", "one:1"} {
		dir := filepath.Join(t.TempDir(), "vol")
		t.Cleanup(func() {
			if err := UnmountRootfs(dir); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		root, err := s.MountReadOnly(ref, dir)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "etc/motd")); err != nil || string(b) != "motd\n" {
			t.Errorf("%s: etc/motd = %q, %v", ref, b, err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("%s: write = %v, want EROFS", ref, err)
		}
		if again, err := s.MountReadOnly(ref, dir); err != nil || again != root || mountCount(t, root) != 1 {
			t.Errorf("%s: second MountReadOnly = %s, %v (%d mounts)", ref, again, err, mountCount(t, root))
		}
		if err := UnmountRootfs(dir); err != nil {
			t.Fatal(err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("%s: dir holds %v after UnmountRootfs", ref, names)
		}
	}
}
