package crilog

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readAll returns the records of the rotated files (gunzipped) and the
// live one, oldest first, and how many files there were.
func readAll(t *testing.T, l *File) ([]string, int) {
	t.Helper()
	var lines []string
	files := append(l.rotatedFiles(), l.path)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = fh
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
	}
	return lines, len(files)
}

// message is the text of a record "<time> stdout F <text>", "" if the
// record is not whole.
func message(rec string) string {
	f := strings.SplitN(rec, " ", 4)
	if len(f) != 4 || f[1] != "stdout" || f[2] != "F" {
		return ""
	}
	return f[3]
}

func TestFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := OpenFile(path, 200, 4, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(l, func() time.Time { return now })
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "line %d\n", i)
		if i%10 == 9 {
			now = now.Add(time.Second / 2) // two rotations may share a second
		}
	}
	if err := w.Copy("stdout", strings.NewReader(in.String())); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines, files := readAll(t, l)
	if files != 4 {
		t.Errorf("%d files, want 4 (the live one and three rotated)", files)
	}
	rotated := l.rotatedFiles()
	for i, f := range rotated {
		if gz := strings.HasSuffix(f, ".gz"); gz != (i < len(rotated)-1) {
			t.Errorf("%s: only the rotated files before the newest are gzipped", f)
		}
	}
	// The kept records are the last ones written, whole, in order, none
	// twice.
	if len(lines) == 0 {
		t.Fatal("nothing kept")
	}
	first, err := strconv.Atoi(strings.TrimPrefix(message(lines[0]), "line "))
	if err != nil {
		t.Fatalf("first record %q", lines[0])
	}
	for i, rec := range lines {
		if want := fmt.Sprintf("line %d", first+i); message(rec) != want {
			t.Fatalf("record %d is %q, want %q", i, rec, want)
		}
	}
	if last := message(lines[len(lines)-1]); last != "line 99" {
		t.Errorf("last record %q", last)
	}
}

// TestFileFullDisk: on a full filesystem records are dropped whole (a
// partial one is cut off), the writer never fails, and writing resumes
// once there is room.
func TestFileFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs (tests run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 60<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenFile(filepath.Join(dir, "0.log"), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := NewWriter(l, nil)
	long := strings.Repeat("x", 1000)
	for i := range 20 {
		if err := w.Copy("stdout", strings.NewReader(fmt.Sprintf("%d %s\n", i, long))); err != nil {
			t.Fatal(err)
		}
	}
	if l.Dropped() == 0 {
		t.Fatal("nothing dropped on a full filesystem")
	}
	os.Remove(filler)
	if err := w.Copy("stdout", strings.NewReader("after\n")); err != nil {
		t.Fatal(err)
	}
	lines, _ := readAll(t, l)
	for i, rec := range lines {
		if message(rec) == "" {
			t.Errorf("record %d is not whole: %.80q", i, rec)
		}
	}
	if len(lines) == 0 || message(lines[len(lines)-1]) != "after" {
		t.Errorf("no record after space returned (%d records)", len(lines))
	}
}

// TestFileOpenedOnFullDisk: a log that cannot even be created (no inode
// left) does not fail the container; it appears once there is room.
func TestFileOpenedOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=4", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs (tests run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	var fillers []string
	for i := 0; ; i++ {
		f := filepath.Join(dir, fmt.Sprint("filler", i))
		if os.WriteFile(f, nil, 0o644) != nil {
			break
		}
		fillers = append(fillers, f)
	}
	path := filepath.Join(dir, "0.log")
	l, err := OpenFile(path, 0, 0, nil)
	if err != nil {
		t.Fatalf("OpenFile with no inode left: %v", err)
	}
	defer l.Close()
	w := NewWriter(l, nil)
	w.Copy("stdout", strings.NewReader("lost\n"))
	if l.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", l.Dropped())
	}
	os.Remove(fillers[0])
	w.Copy("stdout", strings.NewReader("kept\n"))
	data, err := os.ReadFile(path)
	if err != nil || message(strings.TrimSuffix(string(data), "\n")) != "kept" {
		t.Errorf("log once there is room: %q, %v", data, err)
	}
}

// TestFileWriteSplitsBatches: records written together (as Copy writes
// what it read at once) are split between files at record boundaries, so
// that no file grows past the maximum; a record larger than it is alone.
func TestFileWriteSplitsBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := OpenFile(path, 100, 100, func() time.Time { now = now.Add(time.Second); return now })
	if err != nil {
		t.Fatal(err)
	}
	var batch strings.Builder
	for i := range 10 {
		fmt.Fprintf(&batch, "record %02d %s\n", i, strings.Repeat("y", 29)) // 40 bytes
	}
	fmt.Fprintf(&batch, "big %s\n", strings.Repeat("z", 200))
	batch.WriteString("last\n")
	if n, err := l.Write([]byte(batch.String())); err != nil || n != batch.Len() {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range append(l.rotatedFiles(), l.path) {
		data, err := os.ReadFile(f)
		if err != nil || strings.HasSuffix(f, ".gz") {
			continue // only the plain files are sized
		}
		if len(data) > 100 && strings.Count(string(data), "\n") > 1 {
			t.Errorf("%s: %d bytes of several records, past the maximum of 100", f, len(data))
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Errorf("%s ends inside a record", f)
		}
	}
	lines, _ := readAll(t, l)
	for _, rec := range lines {
		got = append(got, strings.Fields(rec)[0])
	}
	if len(lines) != 12 || lines[10][:3] != "big" || lines[11] != "last" {
		t.Errorf("records %q, want the 12 written, in order", got)
	}
}
