package diskusage

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "mem")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// A tmpfs below (a memory-backed emptyDir) is not counted.
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (tests run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", sub).Run() })
	if err := os.WriteFile(filepath.Join(sub, "b"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := Measure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bytes < 1<<20 || u.Bytes > 2<<20 || u.Inodes != 2 {
		t.Errorf("usage %+v, want about 1 MiB in 2 inodes (dir and file), the tmpfs not counted", u)
	}
	if u, err := Measure(filepath.Join(dir, "missing")); err != nil || u != (Usage{}) {
		t.Errorf("missing dir: %+v, %v", u, err)
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Cache{TTL: time.Minute, Now: func() time.Time { return now }}
	first, _ := c.Measure(dir)
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.Measure(dir); u != first {
		t.Errorf("within the TTL: %+v, want the cached %+v", u, first)
	}
	now = now.Add(time.Minute)
	if u, _ := c.Measure(dir); u.Bytes < 1<<20 {
		t.Errorf("after the TTL: %+v, want the file counted", u)
	}
}
