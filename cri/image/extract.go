package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
)

// extractor writes a tar stream into a directory that it owns exclusively
// (a fresh temporary directory), without ever writing outside it. Because
// nothing else touches the directory while it works, checking each path
// component with Lstat is race-free, and it can remember which directories
// it has checked.
//
// It serves two purposes: unpacking image layers (layer == true: ownership,
// modes, times, xattrs, devices and OCI whiteouts converted to overlayfs
// form) and extracting the outer archive of an import (layer == false: only
// files and directories matter; symlinks become hard links to the files
// they name inside the directory, so later readers that follow paths
// cannot be led outside it).
type extractor struct {
	root  string // absolute path of the target directory
	layer bool
	what  string // names the stream in errors, e.g. "layer sha256:…"

	checked  map[string]bool // relative paths known to be real directories
	dirs     []dirMeta       // directory times, set last (children change them)
	symlinks []symlinkEntry  // outer archive only: resolved at the end
}

type dirMeta struct {
	path string
	hdr  *tar.Header
}

type symlinkEntry struct{ rel, target string }

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // aufs bookkeeping, and the opaque marker
	opaqueMarker   = ".wh..wh..opq"
)

func newExtractor(root, what string, layer bool) *extractor {
	return &extractor{root: root, what: what, layer: layer, checked: map[string]bool{}}
}

// invalid is the error for a bad entry: the input is at fault.
func (x *extractor) invalid(entry, format string, args ...any) error {
	return errdefs.InvalidArgument("%s: entry %q: %s", x.what, entry, fmt.Sprintf(format, args...))
}

// extract reads the whole tar stream. Errors from the stream itself
// (truncated or corrupt archive) and unsafe entries are of class
// errdefs.ErrInvalidArgument; failures to write the target are not
// classified, since they are the node's problem, not the input's.
func (x *extractor) extract(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return classifyRead(err, "%s: malformed tar: %v", x.what, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	if err := x.resolveSymlinks(); err != nil {
		return err
	}
	return x.setDirTimes()
}

// classifyRead keeps an error already classified by the source reader and
// otherwise classifies it as bad input.
func classifyRead(err error, format string, args ...any) error {
	if isClassified(err) {
		return err
	}
	return errdefs.InvalidArgument(format, args...)
}

func isClassified(err error) bool {
	for _, class := range []error{errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrUnavailable,
		errdefs.ErrFailedPrecondition, errdefs.ErrAlreadyExists, errdefs.ErrDeadlineExceeded,
		errdefs.ErrPermissionDenied} {
		if errors.Is(err, class) {
			return true
		}
	}
	return false
}

// cleanName turns an entry name into a clean path relative to the target.
// A leading "/" is dropped (the entry stays inside the target, as tar and
// Docker do); any ".." component is refused outright rather than cleaned
// away, since no honest layer contains one.
func cleanName(name string) (string, bool) {
	if strings.ContainsRune(name, 0) {
		return "", false
	}
	rel := strings.TrimLeft(name, "/")
	for c := range strings.SplitSeq(rel, "/") {
		if c == ".." {
			return "", false
		}
	}
	return path.Clean("./" + rel), true
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if !x.layer {
			return nil // meaningless in an image archive
		}
	}
	// The holes of a sparse entry read as zeros, so one block of archive
	// can stand for terabytes of file. Image tools never write them (Go's
	// archive/tar cannot), so they are refused rather than filled in.
	if isSparse(hdr) {
		return x.invalid(hdr.Name, "sparse files are not supported")
	}
	rel, ok := cleanName(hdr.Name)
	if !ok {
		return x.invalid(hdr.Name, "path leaves the target directory")
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir && x.layer {
			return x.applyMeta(x.root, hdr)
		}
		return nil
	}
	parent, err := x.dir(path.Dir(rel), true)
	if err != nil {
		return x.pathError(hdr.Name, err)
	}
	base := path.Base(rel)
	if x.layer && strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(hdr.Name, parent, base)
	}
	target := filepath.Join(parent, base)
	if err := x.clear(rel, target, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		x.checked[rel] = true
	case tar.TypeReg:
		if err := writeFile(target, r); err != nil {
			return x.copyError(hdr.Name, err)
		}
	case tar.TypeSymlink:
		if !x.layer {
			x.symlinks = append(x.symlinks, symlinkEntry{rel: rel, target: hdr.Linkname})
			return nil
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		// The link shares the inode, and with it the metadata, of its target.
		return x.hardlink(hdr.Name, hdr.Linkname, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := mknod(target, hdr); err != nil {
			return err
		}
	default:
		return x.invalid(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
	if !x.layer {
		return nil
	}
	return x.applyMeta(target, hdr)
}

// isSparse reports a GNU sparse entry, in the old GNU header or in PAX
// records (formats 0.0 to 1.0).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// dir returns the absolute path of the directory rel, checking that every
// component is a real directory (never a symlink, which could lead outside)
// and creating missing ones when create is set, as tar does for entries
// whose parent was not listed.
func (x *extractor) dir(rel string, create bool) (string, error) {
	if rel == "." {
		return x.root, nil
	}
	p := filepath.Join(x.root, rel)
	if x.checked[rel] {
		return p, nil
	}
	if _, err := x.dir(path.Dir(rel), create); err != nil {
		return "", err
	}
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return "", errUnsafePath{fmt.Sprintf("%s is a symlink", rel)}
	case err == nil:
		return "", errUnsafePath{fmt.Sprintf("%s is not a directory", rel)}
	case errors.Is(err, fs.ErrNotExist) && create:
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	x.checked[rel] = true
	return p, nil
}

// errUnsafePath reports a path that would have to go through something that
// is not a directory.
type errUnsafePath struct{ why string }

func (e errUnsafePath) Error() string { return e.why }

func (x *extractor) pathError(entry string, err error) error {
	var unsafe errUnsafePath
	if errors.As(err, &unsafe) {
		return x.invalid(entry, "parent path is unsafe: %s", unsafe.why)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return x.invalid(entry, "%v", err)
	}
	return err
}

// clear makes room for a new entry at target: a later entry replaces an
// earlier one, except that a directory entry over a directory only updates
// its metadata.
func (x *extractor) clear(rel, target string, isDir bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if isDir {
			return nil
		}
		// Checked directories below it vanish; forget them all (rare).
		clear(x.checked)
		return os.RemoveAll(target)
	}
	delete(x.checked, rel)
	return os.Remove(target)
}

// writeFile creates target (which clear has removed) and copies r into it.
// O_EXCL guarantees the file is new, so nothing is written through a link.
func writeFile(target string, r io.Reader) error {
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return &writeError{err}
	}
	w := &trackingWriter{w: f}
	_, err = io.Copy(w, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		return &writeError{cerr}
	}
	if w.err != nil {
		return &writeError{w.err}
	}
	return err
}

// writeError marks a failure to write the target, as opposed to a failure
// to read the input.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// trackingWriter remembers its own failure so that a copy error can be
// blamed on the right side.
type trackingWriter struct {
	w   io.Writer
	err error
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.err = err
	}
	return n, err
}

func (x *extractor) copyError(entry string, err error) error {
	var we *writeError
	if errors.As(err, &we) {
		return fmt.Errorf("%s: entry %q: %w", x.what, entry, we.err)
	}
	return classifyRead(err, "%s: entry %q: truncated or corrupt: %v", x.what, entry, err)
}

// hardlink links target to linkname, which must name a non-directory
// already extracted inside the target directory.
func (x *extractor) hardlink(entry, linkname, target string) error {
	rel, ok := cleanName(linkname)
	if !ok || rel == "." {
		return x.invalid(entry, "hard link target %q leaves the target directory", linkname)
	}
	missing := x.invalid(entry, "hard link target %q is not in the archive before the link", linkname)
	dir, err := x.dir(path.Dir(rel), false)
	var unsafe errUnsafePath
	if errors.As(err, &unsafe) {
		return x.invalid(entry, "hard link target %q: parent path is unsafe: %s", linkname, unsafe.why)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		return err
	}
	src := filepath.Join(dir, path.Base(rel))
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return x.invalid(entry, "hard link target %q is a directory", linkname)
	}
	if src == target {
		return nil
	}
	return os.Link(src, target)
}

// resolveSymlinks turns the outer archive's symlinks into hard links to the
// regular files they name inside the extraction directory (old `docker
// save` archives link duplicate layers). Links naming anything else are
// dropped: if something needed them, reading it fails with a clear error.
// Links to links resolve over several passes.
func (x *extractor) resolveSymlinks() error {
	for pending := x.symlinks; len(pending) > 0; {
		var next []symlinkEntry
		for _, l := range pending {
			resolved, ok := x.resolveInRoot(l)
			if !ok {
				next = append(next, l)
				continue
			}
			parent, err := x.dir(path.Dir(l.rel), true)
			if err != nil {
				return x.pathError(l.rel, err)
			}
			target := filepath.Join(parent, path.Base(l.rel))
			if err := x.clear(l.rel, target, false); err != nil {
				return err
			}
			if err := os.Link(resolved, target); err != nil {
				return err
			}
		}
		if len(next) == len(pending) {
			return nil
		}
		pending = next
	}
	return nil
}

// resolveInRoot finds the regular file a symlink names, treating the
// extraction directory as "/" and refusing to go through further symlinks
// (there are none on disk: they are all still pending).
func (x *extractor) resolveInRoot(l symlinkEntry) (string, bool) {
	joined := l.target
	if !path.IsAbs(joined) {
		joined = path.Join(path.Dir(l.rel), joined)
	}
	rel := path.Clean("./" + path.Clean("/"+joined)) // ".." cannot climb above the root
	if rel == "." {
		return "", false
	}
	dir, err := x.dir(path.Dir(rel), false)
	if err != nil {
		return "", false
	}
	p := filepath.Join(dir, path.Base(rel))
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return p, true
}
