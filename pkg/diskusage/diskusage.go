// Package diskusage measures what a directory tree holds on its own
// filesystem, as `du -x` does: the blocks and the inodes below it, not
// counting what is mounted below (a memory-backed emptyDir). Pods' logs
// and emptyDirs are measured this way for eviction and for the kubelet
// Summary API.
package diskusage

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what a tree holds: bytes in allocated blocks, and inodes.
type Usage struct {
	Bytes, Inodes uint64
}

// Measure walks dir. A missing dir holds nothing; entries that vanish or
// cannot be read while it walks are not counted.
func Measure(dir string) (Usage, error) {
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Usage{}, nil
		}
		return Usage{}, err
	}
	var u Usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil {
			return nil
		}
		if st.Dev != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		u.Bytes += uint64(st.Blocks) * 512
		u.Inodes++
		return nil
	})
	return u, err
}

// Cache keeps measures for a while: a reader polled often (a metrics
// scraper) does not walk big trees each time.
type Cache struct {
	TTL time.Duration
	Now func() time.Time // time.Now if nil

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	u  Usage
	at time.Time
}

// Measure is the package's Measure, at most TTL old. Entries not asked
// for in a TTL are forgotten.
func (c *Cache) Measure(dir string) (Usage, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now()
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]entry{}
	}
	for k, e := range c.entries {
		if t.Sub(e.at) >= 2*c.TTL {
			delete(c.entries, k)
		}
	}
	e, ok := c.entries[dir]
	c.mu.Unlock()
	if ok && t.Sub(e.at) < c.TTL {
		return e.u, nil
	}
	u, err := Measure(dir)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	c.entries[dir] = entry{u, t}
	c.mu.Unlock()
	return u, nil
}
