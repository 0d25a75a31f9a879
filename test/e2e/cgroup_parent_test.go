package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A parent cgroup shared by two pods goes with the last of them, whichever
// pod created it; one that existed before berth stays.
func TestSharedCgroupParentGoesWithLastPod(t *testing.T) {
	e := newEnv(t)
	top := fmt.Sprintf("/berth-e2e-shared-%d", time.Now().UnixNano())
	preexisting := filepath.Join("/sys/fs/cgroup/memory", top, "kept")
	t.Cleanup(func() {
		for _, h := range []string{"memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "devices", "freezer", "systemd"} {
			for _, d := range []string{"kept", "a", "b", ""} {
				syscall.Rmdir(filepath.Join("/sys/fs/cgroup", h, top, d))
			}
		}
	})
	first := e.podConfig("first", withCgroupParent(top+"/a"))
	second := e.podConfig("second", withCgroupParent(top+"/b"))
	firstID := e.runPod(first) // creates top and top/a
	if err := os.Mkdir(preexisting, 0o755); err != nil {
		t.Fatal(err)
	}
	secondID := e.runPod(second)

	e.removePod(firstID)
	memTop := filepath.Join("/sys/fs/cgroup/memory", top)
	if _, err := os.Stat(filepath.Join(memTop, "a")); !os.IsNotExist(err) {
		t.Errorf("%s/a outlived its only pod", top)
	}
	if _, err := os.Stat(memTop); err != nil {
		t.Fatalf("%s went while the second pod still uses it: %v", top, err)
	}
	e.removePod(secondID)
	if _, err := os.Stat(filepath.Join(memTop, "b")); !os.IsNotExist(err) {
		t.Errorf("%s/b outlived its only pod", top)
	}
	// top now holds only "kept", which berth did not make: top stays too,
	// as it cannot be removed while it holds a cgroup of someone else.
	if _, err := os.Stat(preexisting); err != nil {
		t.Errorf("a cgroup berth did not create was removed: %v", err)
	}
	if err := syscall.Rmdir(preexisting); err != nil {
		t.Fatal(err)
	}
	// Once free, the next sweep (any pod removal) takes top as well.
	third := e.podConfig("third")
	e.removePod(e.runPod(third))
	if _, err := os.Stat(memTop); !os.IsNotExist(err) {
		t.Errorf("%s, created by berth, was not removed once unused", top)
	}
}
