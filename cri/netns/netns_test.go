package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

func requiresRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and mounts")
	}
}

// inode returns the namespace identity of an nsfs file or /proc link.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNewAndRemove(t *testing.T) {
	requiresRoot(t)
	dir := filepath.Join(t.TempDir(), "netns") // created by New
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := inode(t, "/proc/thread-self/ns/net")

	path, err := New(dir, "pod-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(path) })
	if path != filepath.Join(dir, "pod-a") {
		t.Errorf("path = %s", path)
	}
	if after := inode(t, "/proc/thread-self/ns/net"); after != before {
		t.Fatal("New changed the calling thread's network namespace")
	}
	if inode(t, path) == before {
		t.Fatal("the pinned namespace is the host's")
	}
	if ok, err := IsNetNS(path); err != nil || !ok {
		t.Fatalf("IsNetNS = %v, %v", ok, err)
	}

	// The namespace outlives the thread that made it, and is empty: only lo.
	netNS, err := ns.GetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	defer netNS.Close()
	err = netNS.Do(func(ns.NetNS) error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			t.Errorf("interfaces in a new namespace: %v", ifs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := New(dir, "pod-a"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second New: %v, want AlreadyExists", err)
	}
	if ok, _ := IsNetNS(path); !ok {
		t.Fatal("a failed second New damaged the first namespace")
	}

	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after Remove: %v", err)
	}
	if err := Remove(path); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if ok, err := IsNetNS(path); ok || err != nil {
		t.Errorf("IsNetNS after Remove = %v, %v", ok, err)
	}
}

func TestRemoveUnmountedFile(t *testing.T) {
	requiresRoot(t)
	path := filepath.Join(t.TempDir(), "stale")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if ok, _ := IsNetNS(path); ok {
		t.Fatal("a plain file reported as a namespace")
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale file not removed: %v", err)
	}
}

func TestInvalidNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "../x", "x..y", "/abs"} {
		if _, err := New(dir, name); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%q): %v, want InvalidArgument", name, err)
		}
	}
	if _, err := New("", "x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("New with empty dir: %v, want InvalidArgument", err)
	}
	if err := Remove(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Remove(\"\"): %v, want InvalidArgument", err)
	}
}

// TestSharedPropagation pins a namespace in a directory on a shared mount
// (as / is under systemd) and checks that a peer of that mount sees it and
// that Remove takes it away from the peer too, so no copy keeps the
// namespace alive.
func TestSharedPropagation(t *testing.T) {
	requiresRoot(t)
	base := t.TempDir()
	dir, peer := filepath.Join(base, "netns"), filepath.Join(base, "peer")
	for _, d := range []string{dir, peer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(src, dst string, flags uintptr) {
		t.Helper()
		if err := unix.Mount(src, dst, "none", flags, ""); err != nil {
			t.Fatalf("mount %s on %s: %v", src, dst, err)
		}
	}
	mount(dir, dir, unix.MS_BIND)
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	mount("none", dir, unix.MS_SHARED)
	mount(dir, peer, unix.MS_BIND) // peer joins dir's peer group
	t.Cleanup(func() { unix.Unmount(peer, unix.MNT_DETACH) })

	path, err := New(dir, "shared")
	if err != nil {
		t.Fatalf("New on a shared mount: %v", err)
	}
	t.Cleanup(func() { Remove(path) })
	copyPath := filepath.Join(peer, "shared")
	if ok, err := IsNetNS(copyPath); err != nil || !ok {
		t.Fatalf("peer does not see the namespace: %v, %v", ok, err)
	}
	if inode(t, copyPath) != inode(t, path) {
		t.Fatal("peer sees a different namespace")
	}

	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if ok, err := IsNetNS(copyPath); err != nil || ok {
		t.Errorf("peer still holds the namespace after Remove: %v, %v", ok, err)
	}
}

// TestNewConcurrent: namespaces made at the same time are distinct and
// none leaks into the callers.
func TestNewConcurrent(t *testing.T) {
	requiresRoot(t)
	dir := t.TempDir()
	host := inode(t, "/proc/self/ns/net")
	const count = 16
	paths := make(chan string, count)
	errs := make(chan error, count)
	for i := range count {
		go func() {
			p, err := New(dir, fmt.Sprintf("ns-%d", i))
			if err != nil {
				errs <- err
				return
			}
			paths <- p
		}()
	}
	seen := map[uint64]bool{host: true}
	for range count {
		select {
		case err := <-errs:
			t.Fatal(err)
		case p := <-paths:
			t.Cleanup(func() { Remove(p) })
			ino := inode(t, p)
			if seen[ino] {
				t.Errorf("%s: namespace shared with another or with the host", p)
			}
			seen[ino] = true
		}
	}
	if inode(t, "/proc/self/ns/net") != host {
		t.Error("the main thread's namespace changed")
	}
}
