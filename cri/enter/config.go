package enter

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Unsupported says why berth-exec cannot run proc in a container of spec
// exactly as runc would, or nil if it can. The caller then uses runc.
func Unsupported(spec *specs.Spec, proc *specs.Process) error {
	switch {
	case proc.Terminal:
		return fmt.Errorf("a terminal")
	case proc.ApparmorProfile != "" || proc.SelinuxLabel != "":
		return fmt.Errorf("an AppArmor profile or SELinux label")
	case proc.IOPriority != nil || proc.Scheduler != nil || proc.ExecCPUAffinity != nil:
		return fmt.Errorf("an I/O priority, scheduler or CPU affinity")
	case len(proc.Args) == 0:
		return fmt.Errorf("no command")
	}
	if l := spec.Linux; l != nil {
		if l.Personality != nil {
			return fmt.Errorf("a personality")
		}
		for _, ns := range l.Namespaces {
			if ns.Type == specs.UserNamespace || ns.Type == specs.TimeNamespace {
				return fmt.Errorf("a %s namespace", ns.Type)
			}
		}
	}
	if _, err := capsOf(proc.Capabilities); err != nil {
		return err
	}
	for _, r := range proc.Rlimits {
		if _, ok := rlimits[r.Type]; !ok {
			return fmt.Errorf("rlimit %s", r.Type)
		}
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		if _, err := seccompTokens(spec.Linux.Seccomp); err != nil {
			return err
		}
	}
	return nil
}

// rlimits are the resources runc knows, by their OCI names.
var rlimits = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// capNumbers maps "CAP_CHOWN" and the like to capability numbers.
var capNumbers = func() map[string]uint {
	m := map[string]uint{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = uint(c)
	}
	return m
}()

// capSets are the process's capability sets as masks, in berth-exec's
// order: bounding, effective, permitted, inheritable, ambient. No
// capabilities at all is five empty sets, as runc takes it.
func capsOf(c *specs.LinuxCapabilities) ([5]uint64, error) {
	var sets [5]uint64
	if c == nil {
		return sets, nil
	}
	for i, names := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, name := range names {
			n, ok := capNumbers[name]
			if !ok || n > 63 {
				return sets, fmt.Errorf("capability %s", name)
			}
			sets[i] |= 1 << n
		}
	}
	return sets, nil
}

// target is what berth-exec joins: the container's init (by pidfd, with
// its pid for older kernels), its namespaces and its cgroup.procs files.
type target struct {
	id      string
	pidfd   int // as numbered in the helper
	pid     int
	nsFlags int
	cgroups []string
}

// encode is berth-exec's configuration for running proc in t: the tokens
// described in cmd/berth-exec, each NUL-terminated. Unsupported(spec,
// proc) must have been nil.
func encode(t target, spec *specs.Spec, proc *specs.Process) ([]byte, error) {
	var b tokenBuf
	b.add("pidfd", strconv.Itoa(t.pidfd), "pid", strconv.Itoa(t.pid), "ns", strconv.Itoa(t.nsFlags))
	for _, c := range t.cgroups {
		b.add("cgroup", c)
	}
	if proc.OOMScoreAdj != nil {
		b.add("oom", strconv.Itoa(*proc.OOMScoreAdj))
	}
	for _, a := range proc.Args {
		b.add("arg", a)
	}
	for _, e := range proc.Env {
		b.add("env", e)
	}
	if proc.Cwd != "" {
		b.add("cwd", proc.Cwd)
	}
	b.add("uid", u32(proc.User.UID), "gid", u32(proc.User.GID))
	for _, g := range proc.User.AdditionalGids {
		b.add("group", u32(g))
	}
	if proc.User.Umask != nil {
		b.add("umask", u32(*proc.User.Umask))
	}
	caps, err := capsOf(proc.Capabilities)
	if err != nil {
		return nil, err
	}
	for i, set := range []string{"bnd", "eff", "prm", "inh", "amb"} {
		b.add("cap", set, strconv.FormatUint(caps[i], 10))
	}
	for _, r := range proc.Rlimits {
		res, ok := rlimits[r.Type]
		if !ok {
			return nil, fmt.Errorf("rlimit %s", r.Type)
		}
		b.add("rlimit", strconv.Itoa(res), strconv.FormatUint(r.Soft, 10), strconv.FormatUint(r.Hard, 10))
	}
	// runc gives every exec its own session keyring, named for the
	// container, rather than the runtime's.
	b.add("keyring", "_ses."+t.id)
	if proc.NoNewPrivileges {
		b.add("nnp")
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		toks, err := seccompTokens(spec.Linux.Seccomp)
		if err != nil {
			return nil, err
		}
		b.add(toks...)
	}
	return b.buf, nil
}

type tokenBuf struct{ buf []byte }

func (b *tokenBuf) add(tokens ...string) {
	for _, t := range tokens {
		b.buf = append(b.buf, t...)
		b.buf = append(b.buf, 0)
	}
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
