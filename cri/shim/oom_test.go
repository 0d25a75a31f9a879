package shim

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOOMWatchGoneCgroup: a container whose cgroup is gone by its exit
// (a systemd scope) is OOM-killed when its parent counted one more kill
// during its life and it died of SIGKILL; not when it exited, or when
// the parent's count did not move.
func TestOOMWatchGoneCgroup(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "memory.events")
	own := filepath.Join(dir, "c.scope", "memory.events")
	write := func(f, kills string) {
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill "+kills+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name        string
		parentAfter string
		sig         int
		want        bool
	}{
		{"killed by its limit", "3", int(unix.SIGKILL), true},
		{"exited", "3", 0, false},
		{"killed, no OOM", "2", int(unix.SIGKILL), false},
	} {
		write(parent, "2")
		write(own, "0")
		w := newOOMWatch([]string{own})
		w.start()
		os.RemoveAll(filepath.Dir(own)) // systemd removed the scope
		write(parent, tc.parentAfter)
		if got := w.done(tc.sig); got != tc.want {
			t.Errorf("%s: OOM-killed %v, want %v", tc.name, got, tc.want)
		}
	}
	write(own, "1")
	if w := newOOMWatch([]string{own}); !w.done(int(unix.SIGKILL)) {
		t.Error("its own counter says 1: not OOM-killed")
	}
}
