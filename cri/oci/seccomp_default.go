package oci

import (
	"runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// blockedGroup is a set of syscalls the default profile refuses unless the
// container holds one of unlessCaps (nil: refused whatever the capabilities).
// The kernel already checks these capabilities inside the syscalls; the
// profile exists to shrink the attack surface of code paths that are not
// namespaced, so a capability that legitimately opens a path re-opens it.
type blockedGroup struct {
	unlessCaps []string
	names      []string
}

var blockedSyscalls = []blockedGroup{
	// Not namespaced at all: the kernel keyring, obsolete or legacy
	// interfaces, and ones only an emulator needs.
	{nil, []string{
		"add_key", "request_key", "keyctl",
		"nfsservctl", "vm86", "vm86old", "uselib", "sysfs", "_sysctl",
		"get_kernel_syms", "query_module", "create_module",
	}},
	// Mounting and namespace manipulation.
	{[]string{"CAP_SYS_ADMIN"}, []string{
		"mount", "umount", "umount2", "pivot_root",
		"move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
		"mount_setattr", "unshare", "setns",
		"swapon", "swapoff", "quotactl", "quotactl_fd", "lookup_dcookie",
		"fanotify_init",
	}},
	{[]string{"CAP_SYS_ADMIN", "CAP_BPF"}, []string{"bpf"}},
	{[]string{"CAP_SYS_ADMIN", "CAP_PERFMON"}, []string{"perf_event_open"}},
	{[]string{"CAP_DAC_READ_SEARCH"}, []string{"open_by_handle_at", "name_to_handle_at"}},
	// Reading or writing other processes' memory.
	{[]string{"CAP_SYS_PTRACE"}, []string{
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "userfaultfd",
	}},
	{[]string{"CAP_SYS_MODULE"}, []string{"init_module", "finit_module", "delete_module"}},
	{[]string{"CAP_SYS_BOOT"}, []string{"reboot", "kexec_load", "kexec_file_load"}},
	{[]string{"CAP_SYS_TIME"}, []string{
		"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
	}},
	{[]string{"CAP_SYS_RAWIO"}, []string{"iopl", "ioperm"}},
	{[]string{"CAP_SYSLOG"}, []string{"syslog"}},
	{[]string{"CAP_SYS_PACCT"}, []string{"acct"}},
}

// cloneNamespaceFlags are the clone(2) flags that create namespaces. The
// default profile refuses them without CAP_SYS_ADMIN, as it refuses unshare.
var cloneNamespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
}

// seccompArchitectures returns the syscall ABIs a process on this machine can
// use. A deny-list must cover all of them: otherwise a blocked call could be
// made through the other ABI (int 0x80 on x86_64, for instance).
func seccompArchitectures(goarch string) []specs.Arch {
	switch goarch {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	}
	return nil // native only
}

// DefaultSeccompProfile returns berth's RuntimeDefault profile for a process
// holding the given (effective) capabilities. It allows by default and
// returns EPERM for the syscalls listed in blockedSyscalls, and ENOSYS for
// clone3 so that libc falls back to clone, whose flags can be inspected.
// See doc.go for why this is a deny-list.
func DefaultSeccompProfile(caps []string) *specs.LinuxSeccomp {
	has := func(any []string) bool {
		for _, c := range any {
			if slices.Contains(caps, c) {
				return true
			}
		}
		return false
	}
	var blocked []string
	for _, g := range blockedSyscalls {
		if g.unlessCaps == nil || !has(g.unlessCaps) {
			blocked = append(blocked, g.names...)
		}
	}
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: seccompArchitectures(runtime.GOARCH),
		Syscalls: []specs.LinuxSyscall{
			{Names: blocked, Action: specs.ActErrno, ErrnoRet: &eperm},
		},
	}
	if !has([]string{"CAP_SYS_ADMIN"}) {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys,
		})
		// One rule per flag: rules are OR-ed, conditions within one AND-ed.
		for _, flag := range cloneNamespaceFlags {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
				Names:    []string{"clone"},
				Action:   specs.ActErrno,
				ErrnoRet: &eperm,
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: flag, ValueTwo: flag, Op: specs.OpMaskedEqual},
				},
			})
		}
	}
	return p
}
