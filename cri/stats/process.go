package stats

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// Processes is what the processes of one cgroup are and hold open.
type Processes struct {
	Count uint64 // processes (not threads) in the cgroup itself
	// FileDescriptors counts the files those processes hold open, and
	// Sockets the sockets among them. Both are known (FilesKnown) only
	// when counting them stayed within maxScannedProcesses and
	// maxScannedFiles: they cost a look at every open file.
	FileDescriptors, Sockets uint64
	FilesKnown               bool
}

// Add returns the count of both sets of processes.
func (p Processes) Add(o Processes) Processes {
	return Processes{
		Count:           p.Count + o.Count,
		FileDescriptors: p.FileDescriptors + o.FileDescriptors,
		Sockets:         p.Sockets + o.Sockets,
		FilesKnown:      p.FilesKnown && o.FilesKnown,
	}
}

// The work Processes does for one cgroup is bounded: past these, its
// files are not counted at all (a partial count would read as a drop).
// A process costs an open and a directory read, a file one readlink
// (about a microsecond).
const (
	maxScannedProcesses = 128
	maxScannedFiles     = 2048
)

// Pids lists the processes in the cgroup at dir itself, not in its
// descendants: cgroup.procs of the pids hierarchy on v1 (or of another
// that is mounted). A missing cgroup is errdefs.ErrNotFound.
func (r *Reader) Pids(dir string) ([]int, error) {
	h := r.root
	if !r.unified {
		// Every v1 hierarchy holds the same processes.
		for _, sub := range []string{"pids", "memory", "cpuacct"} {
			if p, ok := r.v1[sub]; ok {
				h = p
				break
			}
		}
	}
	path := filepath.Join(h, dir)
	data, err := cgroups.ReadFile(path, "cgroup.procs")
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("cgroup %s does not exist", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	var pids []int
	for _, line := range strings.Fields(data) {
		pid, err := strconv.Atoi(line)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// countProcesses counts pids and, within the caps, their open files from
// <procRoot>/<pid>/fd. A process that exits meanwhile counts with the
// files it was seen with, if any.
func countProcesses(procRoot string, pids []int) Processes {
	p := Processes{Count: uint64(len(pids)), FilesKnown: len(pids) <= maxScannedProcesses}
	budget := maxScannedFiles
	for _, pid := range pids {
		if !p.FilesKnown {
			break
		}
		fds, sockets, used, ok := countFiles(filepath.Join(procRoot, strconv.Itoa(pid), "fd"), budget)
		p.FileDescriptors += fds
		p.Sockets += sockets
		budget -= used
		p.FilesKnown = ok
	}
	if !p.FilesKnown {
		p.FileDescriptors, p.Sockets = 0, 0
	}
	return p
}

// countFiles counts the entries of a /proc/<pid>/fd directory and the
// sockets among them, looking at no more than budget entries (ok is
// false when there were more). A directory that is gone, or unreadable
// (a process exiting), has no files.
func countFiles(fdDir string, budget int) (fds, sockets uint64, used int, ok bool) {
	f, err := os.Open(fdDir)
	if err != nil {
		return 0, 0, 0, true
	}
	defer f.Close()
	names, _ := f.Readdirnames(budget + 1)
	if len(names) == 0 {
		return 0, 0, 0, true // no files, or the process is gone
	}
	if len(names) > budget {
		return 0, 0, budget, false
	}
	dirfd := int(f.Fd())
	var buf [16]byte // "socket:[" is all that matters
	for _, name := range names {
		n, err := unix.Readlinkat(dirfd, name, buf[:])
		if err != nil {
			continue // closed meanwhile
		}
		fds++
		if bytes.HasPrefix(buf[:n], []byte("socket:")) {
			sockets++
		}
	}
	return fds, sockets, len(names), true
}
