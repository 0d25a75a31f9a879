package source

import (
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/manifest"
)

// memory is what the source remembers from one reading of the directory
// to the next, so that what runs changes only when a file says so:
//   - a file that becomes unreadable, empty or invalid (half written by
//     `cat >`, an editor saving in place, a typo) keeps its last valid
//     pods running, with its error reported;
//   - of two files defining the same pod, the one that defined it first
//     keeps it and the other is refused; between files new at the same
//     reading (all of them, after a restart of the agent) the older file
//     wins, then the first in name order.
type memory struct {
	lastGood map[string][]*v1.Pod // by file
	owner    map[string]string    // pod namespace/name → file
}

func newMemory() *memory {
	return &memory{lastGood: map[string][]*v1.Pod{}, owner: map[string]string{}}
}

// apply resolves one reading: each file's Pods are what it runs, its Err
// what is reported about it (both may be set when it keeps its last valid
// pods).
func (m *memory) apply(files []manifest.File) []manifest.File {
	out := make([]manifest.File, len(files))
	copy(out, files)
	for i := range out {
		f := &out[i]
		if f.Err != nil && m.lastGood[f.Path] != nil {
			f.Pods = m.lastGood[f.Path]
			f.Err = fmt.Errorf("%w (still running its last valid version)", f.Err)
		}
	}
	// Files that already own a pod claim first.
	owned := func(f *manifest.File) bool {
		for _, p := range f.Pods {
			if m.owner[key(p)] == f.Path {
				return true
			}
		}
		return false
	}
	owner := map[string]string{}
	claim := func(f *manifest.File) {
		for _, p := range f.Pods {
			if other, ok := owner[key(p)]; ok {
				f.Err = fmt.Errorf("%s: pod %s is already defined in %s", f.Path, key(p), other)
				f.Pods = nil
				return
			}
		}
		for _, p := range f.Pods {
			owner[key(p)] = f.Path
		}
	}
	for i := range out {
		if owned(&out[i]) {
			claim(&out[i])
		}
	}
	var fresh []*manifest.File
	for i := range out {
		if !owned(&out[i]) {
			fresh = append(fresh, &out[i])
		}
	}
	sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].ModTime.Before(fresh[j].ModTime) })
	for _, f := range fresh {
		claim(f)
	}
	lastGood := map[string][]*v1.Pod{}
	for i, f := range out {
		switch {
		case files[i].Err == nil && f.Err == nil:
			lastGood[f.Path] = f.Pods
		case m.lastGood[f.Path] != nil:
			lastGood[f.Path] = m.lastGood[f.Path]
		}
	}
	m.lastGood, m.owner = lastGood, owner
	return out
}

func key(p *v1.Pod) string { return p.Namespace + "/" + p.Name }
