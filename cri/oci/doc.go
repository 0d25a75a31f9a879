// Package oci turns CRI requests into OCI runtime specs for runc.
//
// Two entry points, both decide-only functions with no side effects:
//
//   - SandboxSpec builds a pod's pause process (spec_sandbox.go): /pause
//     from a read-only rootfs, the pod's IPC/UTS/PID namespaces (unless they
//     are the node's; a hostNetwork pod also keeps the node's UTS namespace
//     and hostname), the CNI network namespace, the pod's sysctls (checked
//     against the namespaces the pod owns), no capabilities, and an
//     oom_score_adj of -998 clamped to what the runtime may set.
//   - ContainerSpec builds a container (spec_container.go): Kubernetes'
//     command/args rules and environment layering (process.go), the user
//     resolved against the image's own /etc/passwd and /etc/group (user.go),
//     capabilities (caps.go), seccomp (seccomp.go, seccomp_default.go),
//     namespaces joined from the pause process (namespaces.go), mounts
//     (mounts.go), devices (devices.go) and cgroup limits (resources.go).
//
// UpdateContainerResources and UpdateSandboxResources (resources_update.go)
// replace the cgroup limits of an existing spec for the CRI's update calls,
// whose requests MergeResources lays over the current values.
//
// StopSignal (signal.go) parses an image's STOPSIGNAL; DefaultCapabilities
// and DefaultSeccompProfile expose the defaults for inspection and exec.
//
// Their only reads are files: the rootfs's passwd/group (opened confined to
// the rootfs, so a symlink in an untrusted image cannot reach the host's),
// Localhost seccomp profiles, requested devices and mount sources, the
// host's /dev for privileged containers, the node's hostname (HOSTNAME of
// hostNetwork containers whose sandbox names none), and this process's own
// capability bounding set and RLIMIT_NOFILE, which bound what a container
// can be given. Bad requests are errdefs.InvalidArgument errors naming the
// field; conditions of the node (a capability the runtime lacks, a missing
// sandbox PID) are errdefs.FailedPrecondition.
//
// # Seccomp: a deny-list
//
// berth's RuntimeDefault profile (DefaultSeccompProfile) allows every
// syscall by default and returns EPERM for a list of dangerous ones: kernel
// modules, kexec and reboot, mounting and namespace manipulation (mount,
// the new mount API, unshare, setns, clone with namespace flags), the
// non-namespaced keyring, ptrace and cross-process memory access, clock
// setting, bpf and perf_event_open, open_by_handle_at, and obsolete
// interfaces. clone3 returns ENOSYS, since its flags sit in memory a filter
// cannot read; libc then falls back to clone, whose flags it can. A
// capability that legitimately needs a blocked group (CAP_SYS_ADMIN for
// mounts, CAP_SYS_PTRACE for ptrace, CAP_SYS_TIME, CAP_SYS_MODULE, ...)
// re-opens that group, so adding the capability does what the user means.
//
// docker and containerd ship an allow-list instead. It is tighter, but it
// must track every new syscall of every architecture, and a stale list
// breaks new libcs with mysterious EPERMs. A deny-list is short enough to
// review in one screen, never breaks an ordinary program, and still closes
// the interfaces behind most container escapes. It covers every ABI of the
// machine (x86_64 with x86 and x32; aarch64 with arm), or a blocked call
// could be made through the other ABI. Choose Localhost for a stricter
// profile: docker-style files (archMap, includes/excludes by capability and
// architecture) are accepted as well as plain OCI ones.
//
// With no profile requested, sandboxes and containers run unconfined, as
// kubelet expects unless its SeccompDefault option is on.
//
// # Limitations
//
// User namespaces, image volume mounts and SELinux/AppArmor are not
// supported (the first two are refused, the last ignored). Propagation of
// rshared/rslave mounts is not checked against the host mount's own
// propagation. No cgroup namespace is created. Image VOLUMEs not covered by
// a mount are not created. A docker-style rule's minKernel is not evaluated.
package oci
