package stats

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/cri/errdefs"
)

// Interface is one network interface's cumulative counters.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Network reads the interface counters of the network namespace that
// process pid lives in, from <procRoot>/<pid>/net/dev: one small file,
// no namespace switch. When nsPath (a namespace file, such as a pod's
// bind-mounted netns) is given, pid must be in that namespace: a pid that
// was recycled by an unrelated process is errdefs.ErrNotFound, as is a
// process that is gone. The loopback interface is left out: it carries
// no traffic in or out of the namespace.
func Network(procRoot string, pid int, nsPath string) ([]Interface, error) {
	proc := filepath.Join(procRoot, strconv.Itoa(pid))
	if nsPath != "" {
		same, err := sameFile(filepath.Join(proc, "ns", "net"), nsPath)
		if err != nil {
			return nil, err
		}
		if !same {
			return nil, errdefs.NotFound("process %d is not in network namespace %s", pid, nsPath)
		}
	}
	f, err := os.Open(filepath.Join(proc, "net", "dev"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound("process %d is gone", pid)
		}
		return nil, err
	}
	defer f.Close()
	ifaces, err := ParseNetDev(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	out := ifaces[:0]
	for _, i := range ifaces {
		if i.Name != "lo" {
			out = append(out, i)
		}
	}
	return out, nil
}

func sameFile(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	for _, s := range []struct {
		path string
		st   *syscall.Stat_t
	}{{a, &sa}, {b, &sb}} {
		if err := syscall.Stat(s.path, s.st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return false, errdefs.NotFound("%s does not exist", s.path)
			}
			return false, fmt.Errorf("stat %s: %w", s.path, err)
		}
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// ParseNetDev parses the format of /proc/net/dev: two header lines, then
// "<name>: " and 16 counters per interface (8 receive, 8 transmit).
func ParseNetDev(r io.Reader) ([]Interface, error) {
	var out []Interface
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("line %d: no interface name", line+1)
		}
		fields := strings.Fields(rest)
		if len(fields) < 16 {
			return nil, fmt.Errorf("line %d: %d counters, want 16", line+1, len(fields))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line+1, err)
			}
			v[i] = n
		}
		out = append(out, Interface{
			Name:    strings.TrimSpace(name),
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
	}
	return out, sc.Err()
}
