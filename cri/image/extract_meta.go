package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Layer metadata: what makes an unpacked layer behave like the image's
// author built it. The order matters: chown clears set-id bits and file
// capabilities, so ownership comes first, then mode, then xattrs.

const (
	xattrPAXPrefix  = "SCHILY.xattr."
	overlayXattrs   = "trusted.overlay."
	opaqueXattr     = "trusted.overlay.opaque"
	whiteoutDevMode = unix.S_IFCHR // overlayfs whiteout: char device 0:0
)

// applyMeta gives an extracted entry the ownership, mode, xattrs and times
// its header records. Directory times are deferred to setDirTimes.
func (x *extractor) applyMeta(target string, hdr *tar.Header) error {
	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("%s: entry %q: %w", x.what, hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(target, tarMode(hdr.Mode)); err != nil {
			return fmt.Errorf("%s: entry %q: %w", x.what, hdr.Name, err)
		}
	}
	if err := setXattrs(target, hdr); err != nil {
		return fmt.Errorf("%s: entry %q: %w", x.what, hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirs = append(x.dirs, dirMeta{path: target, hdr: hdr})
		return nil
	}
	if err := setTimes(target, hdr); err != nil {
		return fmt.Errorf("%s: entry %q: %w", x.what, hdr.Name, err)
	}
	return nil
}

// tarMode converts tar's mode bits (Unix values) to Go's FileMode, which
// keeps set-id and sticky bits in separate flags.
func tarMode(m int64) os.FileMode {
	mode := os.FileMode(m).Perm()
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// setXattrs applies the PAX "SCHILY.xattr." records. overlayfs attributes
// are dropped: an image must not be able to plant a redirect or metacopy
// attribute that the kernel would act on. A file system that does not
// support xattrs loses them rather than failing the import.
func setXattrs(target string, hdr *tar.Header) error {
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, xattrPAXPrefix)
		if !ok || strings.HasPrefix(attr, overlayXattrs) {
			continue
		}
		err := unix.Lsetxattr(target, attr, []byte(value), 0)
		if errors.Is(err, unix.ENOTSUP) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", attr, err)
		}
	}
	return nil
}

func setTimes(target string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// timespec clamps times before the epoch (a zero tar time is year 1), which
// some file systems refuse.
func timespec(t time.Time) unix.Timespec {
	if t.Before(time.Unix(0, 0)) {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setDirTimes runs last, deepest directories first, because creating
// entries inside a directory changes its mtime.
func (x *extractor) setDirTimes() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if fi, err := os.Lstat(d.path); err != nil || !fi.IsDir() {
			continue // replaced by a later entry
		}
		if err := setTimes(d.path, d.hdr); err != nil {
			return fmt.Errorf("%s: entry %q: %w", x.what, d.hdr.Name, err)
		}
	}
	return nil
}

func mknod(target string, hdr *tar.Header) error {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	default:
		kind = unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknod(target, kind|uint32(hdr.Mode&0o7777), int(dev)); err != nil {
		return fmt.Errorf("mknod %s: %w", target, err)
	}
	return nil
}

// whiteout converts an OCI whiteout into overlayfs form. ".wh.<name>"
// deletes <name> from the layers below: overlayfs expresses that as a 0:0
// character device named <name>. ".wh..wh..opq" hides everything the layers
// below have in this directory: overlayfs expresses that as the
// trusted.overlay.opaque="y" xattr on the directory. Other ".wh..wh."
// names are aufs bookkeeping and carry no meaning for the image.
func (x *extractor) whiteout(entry, parent, base string) error {
	if base == opaqueMarker {
		if err := unix.Lsetxattr(parent, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("%s: entry %q: set opaque: %w", x.what, entry, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return x.invalid(entry, "whiteout names no file")
	}
	target := filepath.Join(parent, name)
	rel, err := filepath.Rel(x.root, target)
	if err != nil {
		return err
	}
	if err := x.clear(filepath.ToSlash(rel), target, false); err != nil {
		return err
	}
	if err := unix.Mknod(target, whiteoutDevMode, 0); err != nil {
		return fmt.Errorf("%s: entry %q: create whiteout: %w", x.what, entry, err)
	}
	return nil
}
