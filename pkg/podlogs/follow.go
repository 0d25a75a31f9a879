// Package podlogs reads a container's CRI log file as berth's shim writes
// it: the last lines of it, and following it across rotations. The shim
// rotates between two records and names rotated files so that they sort
// by age and are never used again (<path>.<YYYYMMDD-HHMMSS>[-NNN], older
// ones gzipped). A follower knows each file by its first record: when the
// file it holds is rotated away it reads the rest of it, finds its
// rotated name, reads every file rotated after it in order, and only then
// the live file, so nothing is lost or read twice while the files are
// kept, however far behind it falls.
package podlogs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Record is one line of a CRI log file.
type Record struct {
	Time    string // RFC 3339 with nanoseconds, as written
	Stream  string // stdout or stderr
	Partial bool   // a piece of a longer line: more follows
	Text    string
}

// parse reads "<time> <stream> <P|F> <text>"; ok is false for anything
// else.
func parse(line string) (Record, bool) {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 3 || (f[2] != "P" && f[2] != "F") {
		return Record{}, false
	}
	r := Record{Time: f[0], Stream: f[1], Partial: f[2] == "P"}
	if len(f) == 4 {
		r.Text = f[3]
	}
	return r, true
}

// Options select and shape what Copy writes, as kubelet's log options.
type Options struct {
	Tail       int       // the last records only; -1: all
	Since      time.Time // records before it are left out
	Timestamps bool      // each line starts with its record's time
	LimitBytes int64     // stop after this many bytes; 0: no limit
}

// Copy writes the log's lines to w as the container wrote them, then,
// with follow, what it writes next until ctx ends or done says the
// container has exited.
func (r *Reader) Copy(ctx context.Context, w io.Writer, o Options, follow bool, poll time.Duration, done func() bool) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var written int64
	var werr error
	write := func(rec Record) {
		if werr != nil || ctx.Err() != nil {
			return
		}
		if !o.Since.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, rec.Time); err == nil && t.Before(o.Since) {
				return
			}
		}
		line := rec.Text
		if !rec.Partial {
			line += "\n"
		}
		if o.Timestamps {
			line = rec.Time + " " + line
		}
		if o.LimitBytes > 0 && written+int64(len(line)) >= o.LimitBytes {
			line = line[:o.LimitBytes-written]
			stop()
		}
		n, err := io.WriteString(w, line)
		written += int64(n)
		werr = err
	}
	records, err := r.Tail(o.Tail)
	if err != nil {
		return err
	}
	for _, rec := range records {
		write(rec)
	}
	if follow && ctx.Err() == nil && werr == nil {
		err = r.Follow(ctx, poll, done, write)
	}
	return errors.Join(err, werr)
}

// Reader reads one container's log.
type Reader struct {
	path    string
	f       *os.File
	r       *bufio.Reader
	sig     string // the held file's first line ("" while it is empty)
	name    string // the rotated name of the last file read whole, or of the held one once found
	pending string // a line read before its newline was written
}

// Open opens the live log at path.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &Reader{path: path, f: f, r: bufio.NewReader(f), sig: firstLine(path, f)}, nil
}

// Close closes the file held.
func (r *Reader) Close() error { return r.f.Close() }

// Tail reads the live file to its end and returns its last n records
// (all if n < 0); Follow goes on from there.
func (r *Reader) Tail(n int) ([]Record, error) {
	var out []Record
	err := r.emit(r.r, func(rec Record) {
		out = append(out, rec)
		if n >= 0 && len(out) > n {
			out = out[1:]
		}
	})
	return out, err
}

// Follow calls fn with every record written from where the reader is
// until ctx ends, or until done (if not nil) says, after the reader has
// caught up, that no more will come; across rotations. poll is how often
// it looks for more.
func (r *Reader) Follow(ctx context.Context, poll time.Duration, done func() bool, fn func(Record)) error {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		// Asked before reading: whatever was written before it said so
		// is read below.
		finished := done != nil && done()
		if err := r.emit(r.r, fn); err != nil {
			return err
		}
		if moved(r.f, r.path) {
			// Whatever was written before the rename is in the held file.
			if err := r.emit(r.r, fn); err != nil {
				return err
			}
			if err := r.catchUp(fn); err != nil {
				return err
			}
			continue
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// catchUp reads, in order, every file rotated after the held one, then
// opens the live file: if it turns out that yet another file was rotated
// before it, that one is read first.
func (r *Reader) catchUp(fn func(Record)) error {
	r.pending = ""
	r.sig = firstLine(r.path, r.f) // it may have been empty when opened
	if held := r.findRotated(r.sig); held != "" {
		r.name = held
	}
	r.f.Close()
	for {
		if next := r.after(r.name); next != "" {
			if err := readWhole(next, func(rd *bufio.Reader) error { return r.emit(rd, fn) }); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			r.name = next
			continue
		}
		f, err := os.Open(r.path)
		if err != nil {
			return err
		}
		sig := firstLine(r.path, f)
		if next := r.after(r.name); next != "" && (sig == "" || firstLine(next, nil) != sig) {
			f.Close() // rotated before this one was opened: read it first
			continue
		}
		r.f, r.r, r.sig = f, bufio.NewReader(f), sig
		return nil
	}
}

// after is the first rotated file after name ("": none yet known), "" if
// there is none; a file compressed since is found by its .gz name.
func (r *Reader) after(name string) string {
	base := strings.TrimSuffix(name, ".gz")
	for _, f := range rotated(r.path) {
		if name == "" || strings.TrimSuffix(f, ".gz") > base {
			return f
		}
	}
	return ""
}

// findRotated is the rotated file whose first line is sig, newest first.
func (r *Reader) findRotated(sig string) string {
	if sig == "" {
		return ""
	}
	files := rotated(r.path)
	for i := len(files) - 1; i >= 0; i-- {
		if strings.TrimSuffix(files[i], ".gz") <= strings.TrimSuffix(r.name, ".gz") && r.name != "" {
			break
		}
		if firstLine(files[i], nil) == sig {
			return files[i]
		}
	}
	return ""
}

func (r *Reader) emit(rd *bufio.Reader, fn func(Record)) error {
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			r.pending += line
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if rec, ok := parse(strings.TrimSuffix(r.pending+line, "\n")); ok {
			fn(rec)
		}
		r.pending = ""
	}
}

// firstLine is a log file's first line, read from f if given (without
// moving its offset), else from the file (gunzipped); "" if it has none
// yet or is gone.
func firstLine(name string, f *os.File) string {
	var src io.Reader
	if f != nil {
		src = io.NewSectionReader(f, 0, 1<<20)
	} else {
		fh, err := os.Open(name)
		if err != nil && !strings.HasSuffix(name, ".gz") {
			fh, err = os.Open(name + ".gz")
			name += ".gz"
		}
		if err != nil {
			return ""
		}
		defer fh.Close()
		src = fh
		if strings.HasSuffix(name, ".gz") {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				return ""
			}
			src = zr
		}
	}
	line, err := bufio.NewReader(src).ReadString('\n')
	if err != nil {
		return ""
	}
	return line
}

// readWhole emits every record of a rotated file, gzipped or not (or
// gzipped since it was listed).
func readWhole(name string, emit func(*bufio.Reader) error) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) && !strings.HasSuffix(name, ".gz") {
		name += ".gz"
		f, err = os.Open(name)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var rd io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		rd = zr
	}
	return emit(bufio.NewReader(rd))
}

// moved says whether path is no longer the file f holds.
func moved(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	cur, err := os.Stat(path)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	return !os.SameFile(held, cur)
}

// rotated are the rotated files of path, oldest first.
func rotated(path string) []string {
	matches, _ := filepath.Glob(path + ".*")
	var out []string
	for _, m := range matches {
		if !strings.HasSuffix(m, ".tmp") {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return strings.Compare(strings.TrimSuffix(a, ".gz"), strings.TrimSuffix(b, ".gz"))
	})
	// A file being compressed is listed twice for a moment: once.
	return slices.CompactFunc(out, func(a, b string) bool { return strings.TrimSuffix(a, ".gz") == strings.TrimSuffix(b, ".gz") })
}
