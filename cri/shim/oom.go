package shim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// oomWatch notes an OOM kill of a container as it happens, from inotify
// on its memory.events (cgroup v2 signals every change of it). Reading
// the counter at exit is not enough there: under the systemd driver the
// container's scope, and its cgroup with it, is gone as soon as the last
// process has, often before the shim has seen the exit. A container
// killed before the watch was set (at once, by a small limit) is told by
// its parent's counter, which counts its children's kills: one more than
// before the container started, and the container died of SIGKILL.
type oomWatch struct {
	files   []string
	parents map[string]uint64 // the parents' memory.events and their oom_kill before the start
	seen    atomic.Bool
	f       *os.File // the inotify instance; nil without a watch
}

// newOOMWatch notes the parents' counters; call it before the container
// starts, and start once it runs.
func newOOMWatch(files []string) *oomWatch {
	w := &oomWatch{files: files, parents: map[string]uint64{}}
	for _, f := range files {
		if strings.HasSuffix(f, "/memory.events") {
			p := filepath.Join(filepath.Dir(filepath.Dir(f)), "memory.events")
			w.parents[p] = oomKills(p)
		}
	}
	return w
}

// start watches the files (memory.events; other files, such as v1's
// memory.oom_control, give no events and are only read at exit).
func (w *oomWatch) start() {
	files := w.files
	var events []string
	for _, f := range files {
		if strings.HasSuffix(f, "/memory.events") {
			events = append(events, f)
		}
	}
	if len(events) == 0 {
		return
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return
	}
	for _, f := range events {
		unix.InotifyAddWatch(fd, f, unix.IN_MODIFY)
	}
	w.f = os.NewFile(uintptr(fd), "inotify") // non-blocking: read through Go's poller
	if oomKilled(files) {                    // before the watch was set
		w.seen.Store(true)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := w.f.Read(buf); err != nil {
				return // closed by done, or no watches are left
			}
			if oomKilled(w.files) {
				w.seen.Store(true)
			}
		}
	}()
}

// done reports whether the container, which died by signal sig (0: it
// exited), was OOM-killed, and ends the watch.
func (w *oomWatch) done(sig int) bool {
	killed := w.seen.Load() || oomKilled(w.files)
	if w.f != nil {
		w.f.Close()
	}
	if !killed && sig == int(unix.SIGKILL) {
		for p, before := range w.parents {
			if oomKills(p) > before {
				killed = true
			}
		}
	}
	return killed
}

// oomKilled reports whether any of the files counts an OOM kill.
func oomKilled(files []string) bool {
	for _, f := range files {
		if oomKills(f) > 0 {
			return true
		}
	}
	return false
}

// oomKills is the "oom_kill N" counter of a cgroup file (memory.events,
// v1's memory.oom_control); 0 if it has none.
func oomKills(file string) uint64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
