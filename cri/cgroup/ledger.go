package cgroup

import (
	"errors"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/berth-project/berth/cri/atomicfile"
)

// Ledger remembers the parent cgroups berth created, across pods and
// restarts. A parent shared by several pods (the default /berth, or
// /kubepods/besteffort created by the first of its pods) must go when the
// last of them goes, not when the one that happened to create it does;
// and one that existed before berth is never berth's to remove.
type Ledger struct {
	path string

	mu   sync.Mutex
	dirs map[string]bool // relative cgroup dirs berth created
}

// OpenLedger loads the ledger kept in the file at path (absent: empty).
func OpenLedger(path string) (*Ledger, error) {
	l := &Ledger{path: path, dirs: map[string]bool{}}
	var dirs []string
	if err := atomicfile.ReadJSON(path, &dirs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, d := range dirs {
		l.dirs[d] = true
	}
	return l, nil
}

// Add records dirs as created by berth.
func (l *Ledger) Add(dirs []string) error {
	if len(dirs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range dirs {
		l.dirs[d] = true
	}
	return l.saveLocked()
}

// Sweep removes, innermost first, every recorded dir that holds none of
// the parents still in use, and forgets those it removed. A dir still
// busy (a process or child cgroup berth does not know of) stays recorded
// for a later sweep.
func (l *Ledger) Sweep(parentsInUse []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dirs []string
	for d := range l.dirs {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	changed := false
	var errs []error
	for _, d := range dirs {
		if holdsAny(d, parentsInUse) {
			continue
		}
		if err := Remove([]string{d}); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(l.dirs, d)
		changed = true
	}
	if changed {
		if err := l.saveLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// holdsAny reports whether dir is one of dirs or an ancestor of one.
func holdsAny(dir string, dirs []string) bool {
	for _, p := range dirs {
		if p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
			return true
		}
	}
	return false
}

func (l *Ledger) saveLocked() error {
	dirs := make([]string, 0, len(l.dirs))
	for d := range l.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return atomicfile.WriteJSON(l.path, dirs)
}
