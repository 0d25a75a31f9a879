package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// New creates a network namespace and pins it on the file dir/name, which
// it creates (and dir with it, if missing). It returns the file's path. An
// existing dir/name is AlreadyExists; a bad name is InvalidArgument. The
// calling goroutine's namespace is never changed.
func New(dir, name string) (string, error) {
	if dir == "" {
		return "", errdefs.InvalidArgument("network namespace directory is empty")
	}
	if err := validateName(name); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create network namespace directory: %w", err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", errdefs.AlreadyExists("network namespace %s already exists", path)
		}
		return "", fmt.Errorf("create network namespace %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create network namespace %s: %w", path, err)
	}
	if err := pinNewNetNS(path); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return path, nil
}

// pinNewNetNS unshares a new network namespace on a locked thread of its
// own, bind-mounts it on path and puts the thread back into its original
// namespace. Only if that return fails does the thread stay locked: its
// goroutine then exits and the Go runtime retires the thread, so no other
// goroutine is ever scheduled in the wrong namespace. (Merely abandoning
// every such thread is not enough: when it happens to be the main thread,
// Go keeps it, and /proc/self/ns/net then names the pod's namespace.)
func pinNewNetNS(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return // locked: the thread may be half-changed
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		mountErr := unix.Mount(src, path, "none", unix.MS_BIND, "")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		if mountErr != nil {
			errc <- fmt.Errorf("bind-mount %s: %w", src, mountErr)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Remove unmounts the namespace pinned on path (lazily, so a process still
// inside keeps it until it leaves) and deletes the file. A path that does
// not exist, or is no longer mounted, is not an error.
func Remove(path string) error {
	if path == "" {
		return errdefs.InvalidArgument("network namespace path is empty")
	}
	// A file can carry more than one mount; peel them all. The bound only
	// guards against a kernel that keeps saying yes.
	for range 16 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.EINVAL) {
			break // not a mount point (any more)
		}
		return fmt.Errorf("remove network namespace %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// IsNetNS reports whether path is a pinned namespace (a file on nsfs). A
// missing path is false with no error.
func IsNetNS(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return errdefs.InvalidArgument("network namespace name is empty")
	case name == "." || name == ".." || strings.Contains(name, ".."):
		return errdefs.InvalidArgument("network namespace name %q: must not contain \"..\"", name)
	case strings.ContainsAny(name, "/\x00"):
		return errdefs.InvalidArgument("network namespace name %q: must not contain '/' or NUL", name)
	}
	return nil
}
