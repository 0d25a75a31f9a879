package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// FsInfo reports the file system holding the store (for the CRI
// ImageFsInfo call, which the kubelet's image garbage collection reads
// every few seconds): the mount point it lives on, and the bytes (allocated
// blocks) and inodes the store's records, blobs and unpacked layers use,
// each hard-linked inode within a layer counted once. Work in progress
// under tmp/ is not counted.
//
// It is cheap: the store keeps the usage of every item and updates it as
// items come and go, so a call sums a few hundred numbers. Only the first
// call after Open walks the layers that were already on disk, once each.
func (s *Store) FsInfo() (mountpoint string, usedBytes, inodesUsed uint64, err error) {
	s.mu.Lock()
	mountpoint = s.usage.mountpoint
	pending := s.usage.pendingLayers()
	s.mu.Unlock()
	if mountpoint == "" {
		// The store's directory stays where it is, so its mount point
		// is looked up once.
		if mountpoint, err = mountPointOf(s.root); err != nil {
			return "", 0, 0, err
		}
	}
	walked := map[string]usage{}
	for _, d := range pending {
		u, err := walkUsage(s.layerDir(d))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return "", 0, 0, fmt.Errorf("image store usage: %w", err)
		}
		walked[d] = u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage.mountpoint = mountpoint
	for d, u := range walked {
		s.usage.settle(d, u)
	}
	total := s.usage.total()
	return mountpoint, total.bytes, total.inodes, nil
}

// usage is the space one stored item takes.
type usage struct{ bytes, inodes uint64 }

// diskUsage is the usage of each stored item, keyed "record:<id>",
// "blob:<digest>" or "layer:<diff ID>". Layers found on disk by Open are
// pending until FsInfo first walks them, so that Open stays quick. The
// owning Store's mu guards it.
type diskUsage struct {
	items      map[string]usage
	pending    map[string]bool // diff IDs
	mountpoint string          // "" until FsInfo looks it up
}

func newDiskUsage() diskUsage {
	return diskUsage{items: map[string]usage{}, pending: map[string]bool{}}
}

func recordKey(id string) string    { return "record:" + id }
func blobKey(digest string) string  { return "blob:" + digest }
func layerKey(diffID string) string { return "layer:" + diffID }

// scan accounts for what Open finds: it stats records and blobs (one
// stat each) and marks layers pending. Open owns s exclusively.
func (u *diskUsage) scan(s *Store) error {
	for id := range s.images {
		u.setFile(recordKey(id), s.recordPath(id))
	}
	blobs, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return err
	}
	for _, e := range blobs {
		if d := "sha256:" + e.Name(); validDigest(d) {
			u.setFile(blobKey(d), s.blobPath(d))
		}
	}
	layers, err := os.ReadDir(s.layersDir())
	if err != nil {
		return err
	}
	for _, e := range layers {
		if d := "sha256:" + e.Name(); validDigest(d) {
			u.pending[d] = true
		}
	}
	return nil
}

// setFile records the usage of one file; a file that cannot be stat'ed
// counts as nothing.
func (u *diskUsage) setFile(key, path string) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		delete(u.items, key)
		return
	}
	u.items[key] = usage{bytes: uint64(st.Blocks) * 512, inodes: 1}
}

// setLayer records a layer's usage, measured before it was published.
func (u *diskUsage) setLayer(diffID string, v usage) {
	delete(u.pending, diffID)
	u.items[layerKey(diffID)] = v
}

// settle records a walk of a pending layer, unless the layer went away
// (or was replaced and measured) while the walk ran.
func (u *diskUsage) settle(diffID string, v usage) {
	if u.pending[diffID] {
		u.setLayer(diffID, v)
	}
}

func (u *diskUsage) forget(key string) { delete(u.items, key) }

func (u *diskUsage) forgetLayer(diffID string) {
	delete(u.pending, diffID)
	delete(u.items, layerKey(diffID))
}

func (u *diskUsage) pendingLayers() []string {
	out := make([]string, 0, len(u.pending))
	for d := range u.pending {
		out = append(out, d)
	}
	return out
}

func (u *diskUsage) total() usage {
	var t usage
	for _, v := range u.items {
		t.bytes += v.bytes
		t.inodes += v.inodes
	}
	return t
}

// walkUsage sums the allocated blocks and inodes of the tree at dir,
// counting each hard-linked inode once.
func walkUsage(dir string) (usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var u usage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		key := inode{dev: uint64(st.Dev), ino: st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		u.bytes += uint64(st.Blocks) * 512
		u.inodes++
		return nil
	})
	return u, err
}

// mountPointOf returns the mount point of the file system holding path:
// the longest mount point that is path or one of its parents.
func mountPointOf(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("image store mount point: %w", err)
	}
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		mp := m.Mountpoint
		return !(mp == "/" || real == mp || strings.HasPrefix(real, mp+"/")), false
	})
	if err != nil {
		return "", fmt.Errorf("image store mount point: %w", err)
	}
	best := string(os.PathSeparator)
	for _, m := range mounts {
		if len(m.Mountpoint) > len(best) {
			best = m.Mountpoint
		}
	}
	return best, nil
}
