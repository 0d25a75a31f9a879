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
// ImageFsInfo call, which the kubelet's image garbage collection reads):
// the mount point it lives on, and the bytes (allocated blocks) and inodes
// the store's own tree uses, each hard-linked inode counted once. It walks
// the tree without holding the store's lock, so on a busy store the numbers
// are a snapshot, not an atomic one; the cost grows with the number of files
// in unpacked layers.
func (s *Store) FsInfo() (mountpoint string, usedBytes, inodesUsed uint64, err error) {
	mountpoint, err = mountPointOf(s.root)
	if err != nil {
		return "", 0, 0, err
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	walkErr := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while we walked
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
		usedBytes += uint64(st.Blocks) * 512
		inodesUsed++
		return nil
	})
	if walkErr != nil {
		return "", 0, 0, fmt.Errorf("image store usage: %w", walkErr)
	}
	return mountpoint, usedBytes, inodesUsed, nil
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
