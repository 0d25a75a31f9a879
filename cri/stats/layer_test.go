package stats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/cri/errdefs"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestLayersUsage(t *testing.T) {
	upper := filepath.Join(t.TempDir(), "upper")
	writeTree(t, upper, map[string]string{
		"etc/hostname": "x",
		"big":          strings.Repeat("a", 256<<10),
	})
	if err := os.Link(filepath.Join(upper, "big"), filepath.Join(upper, "big-link")); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0}
	l := NewLayers(5*time.Second, clock.Now)

	u, err := l.Usage(upper)
	if err != nil {
		t.Fatal(err)
	}
	// upper, etc, etc/hostname, big (big-link is the same inode)
	if u.Inodes != 4 {
		t.Errorf("inodes = %d, want 4", u.Inodes)
	}
	if u.Bytes < 256<<10 || u.Bytes >= 2*256<<10 {
		t.Errorf("bytes = %d, want the 256 KiB file counted once", u.Bytes)
	}
	if u.Mountpoint == "" || !strings.HasPrefix(upper, strings.TrimSuffix(u.Mountpoint, "/")+"/") {
		t.Errorf("mount point %q does not hold %s", u.Mountpoint, upper)
	}
	var fsStat syscall.Statfs_t
	if err := syscall.Statfs(upper, &fsStat); err != nil {
		t.Fatal(err)
	}
	if u.Device == "" || u.FSBytes != fsStat.Blocks*uint64(fsStat.Bsize) || u.FSInodes != fsStat.Files || u.FSInodesFree > u.FSInodes {
		t.Errorf("file system %q: %d bytes, %d inodes (%d free); statfs says %d bytes, %d inodes",
			u.Device, u.FSBytes, u.FSInodes, u.FSInodesFree, fsStat.Blocks*uint64(fsStat.Bsize), fsStat.Files)
	}
	if !u.Time.Equal(t0) {
		t.Errorf("time = %v, want %v", u.Time, t0)
	}

	// Within the TTL the measurement is reused; after it, redone.
	writeTree(t, upper, map[string]string{"new": strings.Repeat("b", 128<<10)})
	clock.Add(4 * time.Second)
	if again, _ := l.Usage(upper); again != u {
		t.Errorf("within the TTL: got %+v, want the cached %+v", again, u)
	}
	clock.Add(2 * time.Second)
	fresh, err := l.Usage(upper)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Inodes != 5 || fresh.Bytes < u.Bytes+128<<10 {
		t.Errorf("after the TTL: got %+v, want the new file counted", fresh)
	}

	if err := os.RemoveAll(upper); err != nil {
		t.Fatal(err)
	}
	clock.Add(10 * time.Second)
	if _, err := l.Usage(upper); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removed dir: err = %v, want NotFound", err)
	}
}

func TestLayersForget(t *testing.T) {
	upper := t.TempDir()
	clock := &fakeClock{now: t0}
	l := NewLayers(time.Hour, clock.Now)
	before, _ := l.Usage(upper)
	writeTree(t, upper, map[string]string{"f": "x"})
	l.Forget(upper)
	after, _ := l.Usage(upper)
	if after.Inodes != before.Inodes+1 {
		t.Errorf("after Forget: %d inodes, want %d", after.Inodes, before.Inodes+1)
	}
}
