package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// selfReport prints, as JSON, what a process can observe of its own
// identity and confinement: credentials, capabilities, no_new_privs,
// seccomp, limits, cgroups, namespaces, keyring, session, signals, and
// whether guarded syscalls are refused. Two ways of running a process in
// a container (runc exec, berth-exec) must print the same.
func selfReport() {
	r := map[string]string{}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs",
			"Seccomp", "Seccomp_filters", "Umask", "SigBlk", "SigIgn", "PPid", "Speculation_Store_Bypass":
			r["status."+k] = strings.Join(strings.Fields(v), " ")
		}
	}
	for _, f := range []string{"limits", "oom_score_adj", "cgroup", "personality", "attr/current", "loginuid"} {
		data, err := os.ReadFile("/proc/self/" + f)
		r[f] = strings.TrimSpace(string(data)) + errText(err)
	}
	for _, ns := range []string{"ipc", "mnt", "net", "pid", "pid_for_children", "uts", "cgroup", "user", "time"} {
		link, err := os.Readlink("/proc/self/ns/" + ns)
		r["ns."+ns] = link + errText(err)
	}
	cwd, err := os.Getwd()
	r["cwd"] = cwd + errText(err)
	env := os.Environ()
	sort.Strings(env)
	r["env"] = strings.Join(env, "\n")
	host, err := os.Hostname()
	r["hostname"] = host + errText(err)
	pid := unix.Getpid()
	sid, _ := unix.Getsid(0)
	r["session leader"] = fmt.Sprint(sid == pid)
	r["group leader"] = fmt.Sprint(unix.Getpgrp() == pid)
	if id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err != nil {
		r["session keyring"] = errText(err)
	} else {
		desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
		r["session keyring"] = desc + errText(err)
	}
	for i, fd := range []string{"0", "1", "2"} {
		var st unix.Stat_t
		err := unix.Fstat(i, &st)
		r["fd"+fd+" owner"] = fmt.Sprint(st.Uid) + errText(err)
		f, err := os.OpenFile(filepath.Join("/proc/self/fd", fd), os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		r["fd"+fd+" reopen"] = errText(err)
	}
	_, _, errno := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUTS, 0, 0)
	r["unshare"] = errno.Error()
	_, _, errno = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	r["clone3"] = errno.Error()
	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}
