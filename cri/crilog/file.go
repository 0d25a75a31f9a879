package crilog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File is a container's log file as the shim writes it. Writes are whole
// records (Writer makes one Write per record), and File keeps them whole:
//
//   - Rotation by size happens between two records, by the writer, so no
//     line is lost or doubled at a rotation (kubelet rotates from outside
//     and can lose lines there). The live file is renamed to
//     <path>.<YYYYMMDD-HHMMSS>, as kubelet names rotated logs; the rotated
//     files before the newest are gzipped; at most MaxFiles files are kept,
//     the live one included.
//   - A write that fails (a full disk) never blocks or fails the
//     container: a partial record is cut off again, the record counts as
//     dropped, and writing resumes once there is space.
type File struct {
	path     string
	maxSize  int64 // 0: never rotated
	maxFiles int
	now      func() time.Time

	mu      sync.Mutex
	f       *os.File // nil while it cannot be opened
	size    int64
	dropped uint64
	closed  bool

	// One goroutine compresses and prunes the rotated files, so that no
	// file is removed while it is compressed.
	kick chan struct{}
	done chan struct{}
}

// OpenFile opens (appending) the log at path. maxSize 0 never rotates;
// maxFiles below 2 keeps two.
func OpenFile(path string, maxSize int64, maxFiles int, now func() time.Time) (*File, error) {
	if now == nil {
		now = time.Now
	}
	l := &File{path: path, maxSize: maxSize, maxFiles: max(maxFiles, 2), now: now,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	// A full filesystem does not keep a container from starting: its
	// output is dropped until the file can be made.
	if err := l.open(); err != nil && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return nil, err
	}
	go l.maintain()
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if errors.Is(err, os.ErrNotExist) {
		// Its directory could not be made either while the disk was full.
		if err = os.MkdirAll(filepath.Dir(l.path), 0o755); err == nil {
			f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		}
	}
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write writes whole records (one or more, each ending in a newline). A
// file is rotated between two records, so that none is split and no file
// grows past the maximum size (but for a single record larger than it).
// It reports success even when records were dropped: the container's
// output must flow on.
func (l *File) Write(recs []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	for rest := recs; len(rest) > 0; {
		chunk := rest
		if l.maxSize > 0 && l.size+int64(len(chunk)) > l.maxSize {
			fit := max(l.maxSize-l.size, 0)
			cut := bytes.LastIndexByte(chunk[:min(fit, int64(len(chunk)))], '\n') + 1
			if cut == 0 && l.size > 0 && l.f != nil { // not one more record fits
				live := l.f
				if l.rotate(); l.f != live {
					continue // a new file (or none yet: dropped below)
				}
				cut = len(chunk) // the rename failed: on into the same file
			}
			if cut == 0 { // one record larger than the maximum: alone in its file
				if cut = bytes.IndexByte(chunk, '\n') + 1; cut == 0 {
					cut = len(chunk)
				}
			}
			chunk = chunk[:cut]
		}
		rest = rest[len(chunk):]
		l.writeChunk(chunk)
	}
	return len(recs), nil
}

// writeChunk writes records into the live file, or counts them dropped;
// l.mu is held.
func (l *File) writeChunk(chunk []byte) {
	if l.f == nil && l.open() != nil {
		l.dropped += uint64(max(bytes.Count(chunk, []byte{'\n'}), 1))
		return
	}
	n, err := l.f.Write(chunk)
	if err != nil {
		if n > 0 {
			// A record cut short would glue to the next one: cut it off.
			l.f.Truncate(l.size)
		}
		l.dropped += uint64(max(bytes.Count(chunk, []byte{'\n'}), 1))
		return
	}
	l.size += int64(n)
}

// rotate renames the live file away and opens a new one; l.mu is held.
// If the rename fails, writing goes on into the same file.
func (l *File) rotate() {
	rotated := l.path + "." + l.now().Format("20060102-150405")
	// Names sort by age: a second rotation within a second is -001, and
	// a name is never used again, even after its file was pruned.
	if files := l.rotatedFiles(); len(files) > 0 {
		last := strings.TrimSuffix(files[len(files)-1], ".gz")
		if rest, ok := strings.CutPrefix(last, rotated); ok {
			n, _ := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			rotated = fmt.Sprintf("%s-%03d", rotated, n+1)
		}
	}
	if err := os.Rename(l.path, rotated); err != nil {
		return
	}
	l.f.Close()
	l.f = nil
	l.open() // on a full disk, the next write tries again
	select {
	case l.kick <- struct{}{}:
	default: // a pass is due anyway
	}
}

// maintain keeps maxFiles files in all (the live one, the newest rotated
// one plain, older ones gzipped) after each rotation, until Close.
func (l *File) maintain() {
	defer close(l.done)
	for range l.kick {
		rotated := l.rotatedFiles()
		for len(rotated)+1 > l.maxFiles {
			os.Remove(rotated[0])
			rotated = rotated[1:]
		}
		for i, f := range rotated {
			if i < len(rotated)-1 && !strings.HasSuffix(f, ".gz") {
				compress(f)
			}
		}
	}
}

// rotatedFiles are the rotated logs, oldest first (their names sort by
// time).
func (l *File) rotatedFiles() []string {
	matches, _ := filepath.Glob(l.path + ".*")
	var out []string
	for _, m := range matches {
		if !strings.HasSuffix(m, ".tmp") {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return strings.Compare(strings.TrimSuffix(a, ".gz"), strings.TrimSuffix(b, ".gz"))
	})
	return out
}

// compress replaces a rotated log with its gzipped copy.
func compress(path string) {
	in, err := os.Open(path)
	if err != nil {
		return
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Close())
	if err != nil {
		os.Remove(tmp) // a full disk: the plain file stays
		return
	}
	if os.Rename(tmp, path+".gz") == nil {
		os.Remove(path)
	}
}

// Reopen opens a new file at the path after someone else renamed the
// live one (CRI ReopenContainerLog).
func (l *File) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	old := l.f
	l.f = nil
	if err := l.open(); err != nil {
		l.f = old
		return err
	}
	if old != nil {
		old.Close()
	}
	return nil
}

// Dropped is how many records could not be written.
func (l *File) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Sync flushes the live file to disk.
func (l *File) Sync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Sync()
	}
}

// Close closes the live file and waits for the rotated files' upkeep.
func (l *File) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	close(l.kick)
	l.mu.Unlock()
	<-l.done
	return err
}
