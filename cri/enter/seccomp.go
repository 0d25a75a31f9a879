package enter

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompTokens turns an OCI seccomp profile into berth-exec's tokens,
// making the choices runc (libcontainer/seccomp) makes, so that the two
// build the same libseccomp filter: an errno action without errnoRet is
// EPERM; a rule whose action is the default is dropped; a rule with two
// conditions on one argument becomes one rule per condition; more than 32
// syscalls turn on libseccomp's binary tree.
//
// Profiles that deny by default are runc's alone: runc prepends a stub that
// answers ENOSYS for syscalls newer than the profile, so that libc falls
// back. Notify actions need a seccomp agent; only runc speaks to one.
func seccompTokens(s *specs.LinuxSeccomp) ([]string, error) {
	if s.DefaultAction != specs.ActAllow && s.DefaultAction != specs.ActLog {
		return nil, fmt.Errorf("a seccomp profile that denies by default (%s)", s.DefaultAction)
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("a seccomp listener")
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	toks := append([]string{"seccomp"}, def...)
	for _, a := range s.Architectures {
		toks = append(toks, "seccomp-arch", strings.TrimPrefix(strings.ToLower(string(a)), "scmp_arch_"))
	}
	for _, f := range s.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			toks = append(toks, "seccomp-flag", "log")
		case specs.LinuxSeccompFlagSpecAllow:
			toks = append(toks, "seccomp-flag", "spec-allow")
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// A single-threaded helper has nothing to synchronise.
		default:
			return nil, fmt.Errorf("seccomp flag %s", f)
		}
	}
	names := 0
	for _, sc := range s.Syscalls {
		names += len(sc.Names)
	}
	if names > 32 {
		toks = append(toks, "seccomp-flag", "optimize")
	}
	for _, sc := range s.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act[0] == def[0] && act[1] == def[1] {
			continue
		}
		conds, err := seccompConditions(sc.Args)
		if err != nil {
			return nil, err
		}
		for _, name := range sc.Names {
			for _, c := range conds {
				toks = append(toks, "seccomp-rule", act[0], act[1], name, strconv.Itoa(len(c)/4))
				toks = append(toks, c...)
			}
		}
	}
	return toks, nil
}

// seccompConditions is one condition list per rule to add: all of args in
// one rule, or, when an argument is tested twice, one rule per condition
// (as runc: libseccomp refuses two tests of one argument in a rule).
func seccompConditions(args []specs.LinuxSeccompArg) ([][]string, error) {
	var all []string
	var each [][]string
	seen := map[uint]int{}
	repeated := false
	for _, a := range args {
		op, ok := seccompOps[a.Op]
		if !ok {
			return nil, fmt.Errorf("seccomp operator %s", a.Op)
		}
		if a.Index > 5 {
			return nil, fmt.Errorf("seccomp argument index %d", a.Index)
		}
		c := []string{strconv.FormatUint(uint64(a.Index), 10), op,
			strconv.FormatUint(a.Value, 10), strconv.FormatUint(a.ValueTwo, 10)}
		all = append(all, c...)
		each = append(each, c)
		seen[a.Index]++
		repeated = repeated || seen[a.Index] > 1
	}
	if repeated {
		return each, nil
	}
	return [][]string{all}, nil
}

var seccompOps = map[specs.LinuxSeccompOperator]string{
	specs.OpNotEqual: "ne", specs.OpLessThan: "lt", specs.OpLessEqual: "le", specs.OpEqualTo: "eq",
	specs.OpGreaterEqual: "ge", specs.OpGreaterThan: "gt", specs.OpMaskedEqual: "masked-eq",
}

// seccompAction is an action's name and errno as berth-exec reads them.
func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint) ([]string, error) {
	errno := "0"
	switch a {
	case specs.ActErrno, specs.ActTrace:
		errno = "1" // EPERM
		if errnoRet != nil {
			errno = strconv.FormatUint(uint64(*errnoRet), 10)
		}
	}
	name, ok := map[specs.LinuxSeccompAction]string{
		specs.ActAllow: "allow", specs.ActErrno: "errno", specs.ActTrace: "trace", specs.ActTrap: "trap",
		specs.ActLog: "log", specs.ActKill: "kill-thread", specs.ActKillThread: "kill-thread",
		specs.ActKillProcess: "kill-process",
	}[a]
	if !ok {
		return nil, fmt.Errorf("seccomp action %s", a)
	}
	return []string{name, errno}, nil
}
