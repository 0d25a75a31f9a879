package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
)

// fakeProcFDs makes <root>/<pid>/fd with links like /proc's: files is pid →
// link targets.
func fakeProcFDs(t testing.TB, files map[int][]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, targets := range files {
		fd := filepath.Join(root, fmt.Sprint(pid), "fd")
		if err := os.MkdirAll(fd, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, target := range targets {
			if err := os.Symlink(target, filepath.Join(fd, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestProcesses(t *testing.T) {
	for name, tree := range map[string]map[string]string{
		"v1": {"pids/pod/ctr/cgroup.procs": "10\n11\n12\n", "memory/pod/ctr/cgroup.procs": "10\n11\n12\n"},
		"v2": {"cgroup.controllers": "pids\n", "pod/ctr/cgroup.procs": "10\n11\n12\n"},
	} {
		t.Run(name, func(t *testing.T) {
			cgroupRoot := t.TempDir()
			writeTree(t, cgroupRoot, tree)
			proc := fakeProcFDs(t, map[int][]string{
				10: {"/dev/null", "pipe:[5]", "socket:[100]"},
				11: {"/dev/null", "socket:[101]", "socket:[102]", "anon_inode:[eventpoll]"},
				// 12 exited after the listing: no fd directory
			})
			c := New(Config{CgroupRoot: cgroupRoot, ProcRoot: proc, Clock: fixedClock})
			got, err := c.Processes("/pod/ctr")
			if err != nil {
				t.Fatal(err)
			}
			if want := (Processes{Count: 3, FileDescriptors: 7, Sockets: 3, FilesKnown: true}); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if _, err := c.Processes("/pod/gone"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("missing cgroup: err = %v, want NotFound", err)
			}
		})
	}
}

// Past the caps, files are not counted at all, rather than partly.
func TestProcessesCapped(t *testing.T) {
	many := make([]int, maxScannedProcesses+1)
	for i := range many {
		many[i] = i + 1
	}
	if got := countProcesses(t.TempDir(), many); got != (Processes{Count: uint64(len(many))}) {
		t.Errorf("too many processes: got %+v, want the count alone", got)
	}

	files := make([]string, maxScannedFiles/2+1)
	for i := range files {
		files[i] = "socket:[1]"
	}
	proc := fakeProcFDs(t, map[int][]string{1: files, 2: files})
	if got := countProcesses(proc, []int{1}); !got.FilesKnown || got.Sockets != uint64(len(files)) {
		t.Errorf("one process within the cap: got %+v", got)
	}
	if got := countProcesses(proc, []int{1, 2}); got != (Processes{Count: 2}) {
		t.Errorf("too many files: got %+v, want the count alone", got)
	}
}

func TestProcessesAdd(t *testing.T) {
	a := Processes{Count: 1, FileDescriptors: 2, Sockets: 1, FilesKnown: true}
	if got := a.Add(a); got != (Processes{Count: 2, FileDescriptors: 4, Sockets: 2, FilesKnown: true}) {
		t.Errorf("got %+v", got)
	}
	if got := a.Add(Processes{Count: 1}); got.FilesKnown {
		t.Errorf("files known in a sum with an unknown part: %+v", got)
	}
}

// The real /proc: this process's own files, a socket among them.
func TestCountFilesOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc")
	}
	f, err := os.CreateTemp(t.TempDir(), "open")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds, _, _, ok := countFiles(fmt.Sprintf("/proc/%d/fd", os.Getpid()), maxScannedFiles)
	if !ok || fds < 4 { // stdin, stdout, stderr, f
		t.Errorf("fds = %d (ok %v), want at least 4", fds, ok)
	}
	entries, _ := os.ReadDir("/proc/self/fd")
	sockets := 0
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			sockets++
		}
	}
	if _, got, _, _ := countFiles(fmt.Sprintf("/proc/%d/fd", os.Getpid()), maxScannedFiles); got != uint64(sockets) {
		t.Errorf("sockets = %d, want %d", got, sockets)
	}
}
