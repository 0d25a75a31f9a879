package cgroup

import (
	"path/filepath"
	"testing"
)

func TestHoldsAny(t *testing.T) {
	for _, tt := range []struct {
		dir  string
		in   []string
		want bool
	}{
		{"/berth", []string{"/berth"}, true},
		{"/top", []string{"/top/a"}, true},
		{"/top/a", []string{"/top/b"}, false},
		{"/top", []string{"/topper/a"}, false},
		{"/top", nil, false},
	} {
		if got := holdsAny(tt.dir, tt.in); got != tt.want {
			t.Errorf("holdsAny(%q, %v) = %v", tt.dir, tt.in, got)
		}
	}
}

// Records survive a reopen; dirs still holding a live parent are kept.
func TestLedgerPersistsAndKeepsDirsInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cgroups.json")
	l, err := OpenLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	// Names that exist in no hierarchy: removing them is a no-op success.
	top, a, b := "/berth-ledger-test-nonexistent", "/berth-ledger-test-nonexistent/a", "/berth-ledger-test-nonexistent/b"
	if err := l.Add([]string{top, a}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add([]string{b}); err != nil {
		t.Fatal(err)
	}
	if err := l.Sweep([]string{b}); err != nil { // pod a gone, pod b alive
		t.Fatal(err)
	}
	l, _ = OpenLedger(path)
	if l.dirs[a] || !l.dirs[top] || !l.dirs[b] {
		t.Fatalf("after the first sweep: %v; want top and b kept, a gone", l.dirs)
	}
	if err := l.Sweep(nil); err != nil { // the last pod gone
		t.Fatal(err)
	}
	if l, _ = OpenLedger(path); len(l.dirs) != 0 {
		t.Fatalf("after the last sweep: %v", l.dirs)
	}
}
