// Package enter runs a process inside a running container the way `runc
// exec` does, but through berth-exec (cmd/berth-exec), a small static C
// helper, instead of runc's two Go start-ups: an exec probe costs a fork,
// a few setns and an execve rather than tens of milliseconds of CPU.
//
// The helper gets the same process a runc exec would (the container's
// spec with the command swapped in) and honours all of it: namespaces,
// cgroups, user and groups, capabilities, no_new_privs, rlimits,
// oom_score_adj, umask, the session keyring, environment, working
// directory and seccomp (the same libseccomp filter runc builds). What it
// cannot honour exactly as runc would, Unsupported names, and the caller
// uses runc: terminals, AppArmor and SELinux labels, I/O priority,
// schedulers, personalities, user and time namespaces, seccomp profiles
// that deny by default (runc adds an ENOSYS stub to those) or notify an
// agent.
//
// The container is named by a pidfd of its init, taken before its cgroup
// is checked, so a reused pid can never be entered.
package enter
