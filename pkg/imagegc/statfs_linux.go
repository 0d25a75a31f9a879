package imagegc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Statfs reports the filesystem at mountpoint as df does: its size, and
// the bytes an unprivileged writer may still use (blocks reserved for
// root count as used, as in cadvisor and therefore kubelet).
func Statfs(mountpoint string) (capacity, available uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(mountpoint, &st); err != nil {
		return 0, 0, fmt.Errorf("imagegc: statfs %s: %w", mountpoint, err)
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Blocks * bs, st.Bavail * bs, nil
}
