package main

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Where a pod start's CPU goes: the kernel's process accounting (acct(2))
// records every process that exits, with its name and CPU time, while
// the long-lived processes (the agent, the runtime daemon, the bench
// itself) are read from /proc and the rest of the machine's busy time
// (kernel workers: the file system's writes and syncs) is what is left.

// acctRecord is struct acct_v3 of linux/acct.h (64 bytes).
type acctRecord struct {
	Flag, Version byte
	TTY           uint16
	ExitCode      uint32
	UID, GID      uint32
	PID, PPID     uint32
	BTime         uint32
	ETime         float32
	UTime, STime  uint16 // comp_t, in AHZ
	Mem, IO, RW   uint16
	MinFlt        uint16
	MajFlt, Swaps uint16
	Comm          [16]byte
}

// ahz is the unit of acct's comp_t times on Linux.
const ahz = 100

// compT decodes acct's 16-bit float: a 13-bit mantissa and a base-8 exponent.
func compT(c uint16) float64 {
	return float64(uint64(c&0x1fff) << (3 * uint64(c>>13)))
}

// exitedCPU runs f with process accounting on and returns the CPU-seconds
// of the processes that exited meanwhile, by name.
func exitedCPU(f func() error) (map[string]float64, map[string]int, error) {
	dir, err := os.MkdirTemp("", "bacct")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pacct")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return nil, nil, err
	}
	if err := unix.Acct(file); err != nil {
		return nil, nil, fmt.Errorf("process accounting (acct): %w", err)
	}
	ferr := f()
	if err := acctOff(); err != nil && ferr == nil {
		ferr = err
	}
	if ferr != nil {
		return nil, nil, ferr
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	cpu, count := map[string]float64{}, map[string]int{}
	const size = 64
	for off := 0; off+size <= len(data); off += size {
		var r acctRecord
		if _, err := binary.Decode(data[off:off+size], binary.LittleEndian, &r); err != nil {
			return nil, nil, err
		}
		if r.Version&0x0f != 3 {
			continue
		}
		name := strings.TrimRight(string(r.Comm[:]), "\x00")
		cpu[name] += (compT(r.UTime) + compT(r.STime)) / ahz
		count[name]++
	}
	return cpu, count, nil
}

// acctOff turns process accounting off: acct(NULL), which unix.Acct
// cannot say (it passes "" as a path).
func acctOff() error {
	if _, _, e := unix.Syscall(unix.SYS_ACCT, 0, 0, 0); e != 0 {
		return fmt.Errorf("process accounting off: %w", e)
	}
	return nil
}

// cpuKind names what an exited process was, for the table.
func cpuKind(comm string) string {
	switch {
	case comm == "berth-shim" || strings.HasPrefix(comm, "containerd-shim"):
		return "shims"
	case comm == "runc":
		return "runc create/start/kill/delete"
	case strings.HasPrefix(comm, "runc:"):
		return "runc init (exited before exec)"
	case comm == "sleep" || comm == "pause" || comm == "berth-pause" || comm == "sh":
		return "pod processes (runc init + exec)"
	case comm == "bridge" || comm == "host-local" || comm == "portmap" || comm == "loopback" ||
		strings.HasPrefix(comm, "iptables") || strings.HasPrefix(comm, "ip6tables") || strings.HasPrefix(comm, "xtables") || comm == "nft" || comm == "ip":
		return "CNI plugins (and their iptables)"
	default:
		return "other exited processes"
	}
}

var cpuKinds = []string{"runc create/start/kill/delete", "runc init (exited before exec)", "pod processes (runc init + exec)",
	"CNI plugins (and their iptables)", "shims", "other exited processes"}

// cpuBreakdown is one side's CPU for a number of pods started and removed.
type cpuBreakdown struct {
	kinds      map[string]float64
	daemons    float64 // the agent and runtime daemons, from /proc
	rest       float64 // the machine's busy time not accounted above (kernel workers)
	total      float64
	spawned    int // processes that exited
	pods       int
	otherNames map[string]float64
}

func (b *cpuBreakdown) perPod(x float64) string {
	return fmt.Sprintf("%.0f ms", 1000*x/float64(b.pods))
}

func printBreakdown(names [2]string, bs [2]*cpuBreakdown) {
	fmt.Printf("  where the CPU of %d pods started and removed goes, per pod\n", bs[0].pods)
	row := func(what string, f func(b *cpuBreakdown) string) {
		fmt.Printf("    %-36s %-14s %s\n", what, f(bs[0]), f(bs[1]))
	}
	fmt.Printf("    %-36s %-14s %s\n", "", names[0], names[1])
	row("processes spawned", func(b *cpuBreakdown) string { return fmt.Sprintf("%.1f", float64(b.spawned)/float64(b.pods)) })
	for _, k := range cpuKinds {
		row(k, func(b *cpuBreakdown) string { return b.perPod(b.kinds[k]) })
	}
	row("agent + runtime daemons", func(b *cpuBreakdown) string { return b.perPod(b.daemons) })
	row("rest: kernel workers, acct rounding", func(b *cpuBreakdown) string { return b.perPod(b.rest) })
	row("machine in all (bench client out)", func(b *cpuBreakdown) string { return b.perPod(b.total) })
	for i, b := range bs {
		if len(b.otherNames) > 0 {
			fmt.Printf("    %s's other exited processes: %s\n", names[i], topNames(b.otherNames, 5))
		}
	}
}

// topNames lists the n names with the most CPU, with their CPU-seconds.
func topNames(m map[string]float64, n int) string {
	names := slices.Collect(maps.Keys(m))
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	var parts []string
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %.2fs", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
