package manifest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
)

// MaxFileSize is the largest manifest file read (bigger files are
// refused with an error naming the file and the limit).
const MaxFileSize = 1 << 20

// File is what one manifest file produced.
type File struct {
	Path string    // as given (absolute when from ReadDir)
	Pods []*v1.Pod // defaulted, validated, named as static pods; nil when Err != nil
	Err  error     // why the file was refused; the whole file is skipped then
	// ModTime is when the file was last written (zero if it could not be
	// read): of two files defining one pod, the older one keeps it.
	ModTime time.Time
}

// ReadDir reads every manifest file in dir, sorted by file name.
// Dotfiles (name starting with ".") and subdirectories are ignored. Each
// entry becomes one File, valid or not: an invalid file never affects
// others. Two files defining the same pod are both returned: which one
// wins is the caller's choice (the source keeps the one already running).
// Error only if dir itself cannot be read.
func ReadDir(dir, nodeName string) ([]File, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifest directory: %w", err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("read manifest directory: %w", err)
	}
	var files []File
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		files = append(files, ReadFile(filepath.Join(abs, e.Name()), nodeName))
	}
	return files, nil
}

// ReadFile reads one manifest file; used by ReadDir and by
// `berthctl validate`. A symlink is followed only to a file inside the
// file's own directory, only regular files are opened (a fifo would
// block the reader), and files over MaxFileSize are refused.
func ReadFile(path, nodeName string) File {
	data, mtime, err := readManifest(path)
	if err != nil {
		return File{Path: path, Err: err, ModTime: mtime}
	}
	pods, err := Parse(path, data, nodeName)
	if err != nil {
		return File{Path: path, Err: err, ModTime: mtime}
	}
	return File{Path: path, Pods: pods, ModTime: mtime}
}

func readManifest(path string) ([]byte, time.Time, error) {
	target, err := resolve(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	info, err := os.Lstat(target)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := checkInfo(path, info); err != nil {
		return nil, info.ModTime(), err
	}
	// O_NOFOLLOW and O_NONBLOCK keep the checks above true if the file is
	// swapped for a symlink or a fifo meanwhile; the file is checked again
	// once open.
	f, err := os.OpenFile(target, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, info.ModTime(), err
	}
	data, err := readOpen(path, f)
	if closeErr := f.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("%s: %w", path, closeErr)
	}
	return data, info.ModTime(), err
}

func readOpen(path string, f *os.File) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkInfo(path, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(path)
	}
	return data, nil
}

// resolve returns path itself, or the file a symlink at path leads to
// when that file is inside the directory holding path.
func resolve(path string) (string, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%s: resolve symlink: %w", path, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("%s: resolve manifest directory: %w", path, err)
	}
	if rel, err := filepath.Rel(dir, target); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s: symlink points outside the manifest directory (to %s)", path, target)
	}
	return target, nil
}

func checkInfo(path string, info fs.FileInfo) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s: %s, not a regular file", path, fileKind(info.Mode()))
	}
	if info.Size() > MaxFileSize {
		return tooLarge(path)
	}
	return nil
}

func tooLarge(path string) error {
	return fmt.Errorf("%s: file larger than the limit of %d bytes", path, MaxFileSize)
}

func fileKind(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a fifo"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	case mode&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "of type " + mode.Type().String()
}
