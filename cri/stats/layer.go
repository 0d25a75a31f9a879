package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sync/singleflight"

	"github.com/berth-project/berth/cri/errdefs"
)

// DefaultLayerTTL is how long Layers trusts a measurement by default.
const DefaultLayerTTL = 5 * time.Second

// walkShare bounds the time spent walking one directory: a measurement
// that took d is trusted for at least walkShare*d, so a writable layer
// with a huge tree is walked less often instead of costing every call.
const walkShare = 50

// LayerUsage is the disk space a directory tree takes, and what the file
// system holding it has (statfs, at the same moment).
type LayerUsage struct {
	Mountpoint string // of the file system holding the tree
	Device     string // that file system's source, as mounted (/dev/vda1)
	Bytes      uint64 // allocated blocks, each hard-linked inode once
	Inodes     uint64 // the directory itself included
	// FSBytes is the file system's size; FSInodes and FSInodesFree its
	// inodes, all and unused.
	FSBytes, FSInodes, FSInodesFree uint64
	Time                            time.Time
}

// Layers measures directory trees (containers' overlay upper
// directories) like du does, and caches each measurement for a while:
// the writable layer is the one figure of a container's stats that costs
// a walk. Safe for concurrent use; concurrent callers for one directory
// share one walk.
type Layers struct {
	ttl    time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu        sync.Mutex
	cache     map[string]layerEntry
	mounts    map[string]mount // parent directory → its mount
	lastSweep time.Time
}

// mount is the mount holding a directory.
type mount struct{ point, source string }

type layerEntry struct {
	usage   LayerUsage
	expires time.Time
}

// NewLayers returns a Layers trusting a measurement for ttl (at least).
func NewLayers(ttl time.Duration, now func() time.Time) *Layers {
	return &Layers{ttl: ttl, now: now, cache: map[string]layerEntry{}, mounts: map[string]mount{}}
}

// Usage returns the usage of the tree at dir, measured at most a TTL ago.
// A missing dir is errdefs.ErrNotFound (and forgotten).
func (l *Layers) Usage(dir string) (LayerUsage, error) {
	now := l.now()
	l.mu.Lock()
	l.sweep(now)
	e, ok := l.cache[dir]
	l.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.usage, nil
	}
	v, err, _ := l.flight.Do(dir, func() (any, error) { return l.measure(dir) })
	if err != nil {
		return LayerUsage{}, err
	}
	return v.(LayerUsage), nil
}

// Forget drops the measurement of dir.
func (l *Layers) Forget(dir string) {
	l.mu.Lock()
	delete(l.cache, dir)
	l.mu.Unlock()
}

func (l *Layers) measure(dir string) (LayerUsage, error) {
	start := l.now()
	bytes, inodes, err := walkUsage(dir)
	if errors.Is(err, fs.ErrNotExist) {
		l.Forget(dir)
		return LayerUsage{}, errdefs.NotFound("%s does not exist", dir)
	}
	if err != nil {
		return LayerUsage{}, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	mnt, err := l.mount(filepath.Dir(dir))
	if err != nil {
		return LayerUsage{}, err
	}
	var fsStat syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsStat); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.Forget(dir)
			return LayerUsage{}, errdefs.NotFound("%s does not exist", dir)
		}
		return LayerUsage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	end := l.now()
	u := LayerUsage{
		Mountpoint: mnt.point, Device: mnt.source, Bytes: bytes, Inodes: inodes, Time: end,
		FSBytes:  fsStat.Blocks * uint64(fsStat.Bsize),
		FSInodes: fsStat.Files, FSInodesFree: fsStat.Ffree,
	}
	ttl := max(l.ttl, walkShare*end.Sub(start))
	l.mu.Lock()
	l.cache[dir] = layerEntry{usage: u, expires: end.Add(ttl)}
	l.mu.Unlock()
	return u, nil
}

// mount returns (and remembers) the mount holding dir: the one on the
// longest mount point that is dir or one of its parents, the last of
// them if several are stacked there. Containers' directories share one
// parent, so this reads the mount table once.
func (l *Layers) mount(dir string) (mount, error) {
	l.mu.Lock()
	m, ok := l.mounts[dir]
	l.mu.Unlock()
	if ok {
		return m, nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return mount{}, fmt.Errorf("mount point of %s: %w", dir, err)
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !(m.Mountpoint == "/" || real == m.Mountpoint || strings.HasPrefix(real, m.Mountpoint+"/")), false
	})
	if err != nil {
		return mount{}, fmt.Errorf("mount point of %s: %w", dir, err)
	}
	m = mount{point: "/"}
	for _, info := range mounts {
		if len(info.Mountpoint) >= len(m.point) {
			m = mount{point: info.Mountpoint, source: info.Source}
		}
	}
	l.mu.Lock()
	l.mounts[dir] = m
	l.mu.Unlock()
	return m, nil
}

// sweep drops measurements that expired long ago (their containers are
// likely gone), at most once a minute. l.mu is held.
func (l *Layers) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for dir, e := range l.cache {
		if now.Sub(e.expires) > forgetAfter {
			delete(l.cache, dir)
		}
	}
}

// walkUsage sums the allocated blocks and the inodes of the tree at dir,
// counting a hard-linked inode once. Entries vanishing during the walk
// are skipped; dir itself missing is fs.ErrNotExist.
func walkUsage(dir string) (bytes, inodes uint64, err error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st.Nlink > 1 && st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			key := inode{dev: uint64(st.Dev), ino: st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return bytes, inodes, nil
}
