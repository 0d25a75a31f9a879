package podlogs

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/test/testutil"
)

// rotate does what the shim does: rename the live file to a name that
// sorts after the older ones, gzip the one before it.
func rotate(t *testing.T, path string, n int) {
	t.Helper()
	name := fmt.Sprintf("%s.20260101-000000-%03d", path, n)
	if err := os.Rename(path, name); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		prev := fmt.Sprintf("%s.20260101-000000-%03d", path, n-1)
		data, err := os.ReadFile(prev)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := os.Create(prev + ".gz")
		zw := gzip.NewWriter(out)
		zw.Write(data)
		zw.Close()
		out.Close()
		os.Remove(prev)
	}
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "2026-01-01T00:00:00.000000000Z stdout F %d\n", i)
	}
}

// TestFollowAcrossRotations: a follower that falls several rotations
// behind still gets every line, once, in order.
func TestFollowAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	appendLines(t, path, 0, 10)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	tail, err := r.Tail(3)
	if err != nil || len(tail) != 3 || tail[0].Text != "7" || tail[2].Text != "9" {
		t.Fatalf("tail: %+v, %v", tail, err)
	}
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- r.Follow(ctx, 10*time.Millisecond, nil, func(rec Record) {
			mu.Lock()
			got = append(got, rec.Text)
			mu.Unlock()
		})
	}()
	// Tail read the first ten: the follower starts after them.
	got = append(got, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	// Three rotations at once, before the follower polls.
	mu.Lock()
	for n := range 3 {
		appendLines(t, path, 10+10*n, 20+10*n)
		rotate(t, path, n)
	}
	appendLines(t, path, 40, 45)
	mu.Unlock()
	testutil.Eventually(t, "every line", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 45 })
	mu.Lock()
	defer mu.Unlock()
	for i, s := range got {
		if s != strconv.Itoa(i) {
			t.Fatalf("line %d is %q: %q", i, s, got)
		}
	}
	if len(got) != 45 {
		t.Errorf("%d lines, want 45", len(got))
	}
}

func TestCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	os.WriteFile(path, []byte(`2026-01-01T00:00:01.000000000Z stdout F one
2026-01-01T00:00:02.000000000Z stderr P tw
2026-01-01T00:00:02.100000000Z stderr F o
not a record
2026-01-01T00:00:03.000000000Z stdout F three
`), 0o644)
	copyLog := func(o Options, follow bool, done func() bool) string {
		t.Helper()
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out strings.Builder
		if err := r.Copy(context.Background(), &out, o, follow, time.Millisecond, done); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for name, tc := range map[string]struct {
		o    Options
		want string
	}{
		"all":        {Options{Tail: -1}, "one\ntwo\nthree\n"},
		"tail 2":     {Options{Tail: 2}, "o\nthree\n"},
		"since":      {Options{Tail: -1, Since: time.Date(2026, 1, 1, 0, 0, 2, 50e6, time.UTC)}, "o\nthree\n"},
		"timestamps": {Options{Tail: 1, Timestamps: true}, "2026-01-01T00:00:03.000000000Z three\n"},
		"limit":      {Options{Tail: -1, LimitBytes: 6}, "one\ntw"},
	} {
		if got := copyLog(tc.o, false, nil); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
	// Following a container that has exited ends once the file is read.
	if got := copyLog(Options{Tail: -1}, true, func() bool { return true }); got != "one\ntwo\nthree\n" {
		t.Errorf("follow of an exited container: %q", got)
	}
}
