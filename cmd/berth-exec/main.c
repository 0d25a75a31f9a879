// berth-exec runs one process inside a running container, as `runc exec`
// would, for a fraction of its cost: it is a small static C program that
// joins the container (namespaces through a pidfd of its init, cgroups),
// takes on the process's identity and confinement (rlimits, groups, uid
// and gid, capabilities, no_new_privs, seccomp) and execs the command.
// runc needs two Go start-ups for the same work; this is one fork.
//
// It is started by berthd (cri/enter), which decides everything: it reads
// the container's OCI spec, checks that this helper can honour every field
// of the process (or uses runc instead), and passes the result on fd 3 as
// NUL-terminated tokens. This program only carries them out, in the order
// runc's own exec does, so that the process sees exactly what it would see
// under runc; test/e2e compares the two.
//
// fd 3: the configuration (a memfd, read from offset 0).
// fd 4: errors. A message written here means the command never started;
//       berthd turns it into the ExecSync error. It is close-on-exec, so a
//       successful execve leaves it empty.
// SIGTERM kills the command (SIGKILL) and ends the helper: berthd's
// timeout. If the helper dies, the command is killed by its parent-death
// signal.
//
// Tokens (each a NUL-terminated string; numbers are decimal):
//   pidfd <fd>            pidfd of the container's init
//   pid <pid>             its pid, for kernels whose setns takes no pidfd
//   ns <flags>            CLONE_NEW* flags of the namespaces to join
//   cgroup <path>         a cgroup.procs file to join (repeated)
//   oom <n>               oom_score_adj
//   arg <s> / env <s>     argv and environment (repeated, in order)
//   cwd <s>
//   uid <n> gid <n> group <n> (repeated) umask <n>
//   cap <set> <mask>      set is bnd, eff, prm, inh or amb
//   rlimit <resource> <soft> <hard>
//   keyring <name>        join (or create) this session keyring
//   nnp                   set no_new_privs
//   seccomp <action> <errno>               the filter's default action
//   seccomp-arch <name>  seccomp-flag <name>
//   seccomp-rule <action> <errno> <syscall> <nargs> then nargs times
//                <index> <op> <value> <valuetwo>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONFIG_FD 3
#define ERROR_FD 4
#define MAX_LIST 4096

enum { CAP_BND, CAP_EFF, CAP_PRM, CAP_INH, CAP_AMB, CAP_SETS };

struct rlim {
	int resource;
	struct rlimit limit;
};

struct config {
	int pidfd;
	pid_t pid;
	int nsflags;
	char *cgroups[64];
	int ncgroups;
	int has_oom;
	int oom;
	char *argv[MAX_LIST + 1];
	int argc;
	char *envp[MAX_LIST + 1];
	int envc;
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t groups[256];
	int ngroups;
	int has_umask;
	mode_t umask;
	int has_caps;
	uint64_t caps[CAP_SETS];
	struct rlim rlimits[RLIM_NLIMITS];
	int nrlimits;
	int nnp;
	const char *keyring;
	scmp_filter_ctx seccomp;
};

static volatile pid_t child;

static void fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof msg - 1)
		n = sizeof msg - 1;
	if (write(ERROR_FD, msg, n) < 0) {
		// Nobody to tell: berthd sees the exit status alone.
	}
	_exit(127);
}

// Parsing. Tokens come from berthd, but a malformed one still ends the
// helper with a message rather than undefined behaviour.

struct tokens {
	char *next, *end;
};

static char *token(struct tokens *t, const char *what)
{
	if (t->next >= t->end)
		fail("berth-exec: configuration ends before %s", what);
	char *s = t->next;
	t->next += strlen(s) + 1;
	return s;
}

static uint64_t number(struct tokens *t, const char *what)
{
	char *s = token(t, what), *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0')
		fail("berth-exec: %s: bad number %s", what, s);
	return v;
}

static int64_t snumber(struct tokens *t, const char *what)
{
	char *s = token(t, what), *end;
	errno = 0;
	int64_t v = strtoll(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0')
		fail("berth-exec: %s: bad number %s", what, s);
	return v;
}

static uint32_t action(struct tokens *t)
{
	const char *name = token(t, "seccomp action");
	uint32_t errnum = number(t, "seccomp errno");
	if (!strcmp(name, "allow"))
		return SCMP_ACT_ALLOW;
	if (!strcmp(name, "errno"))
		return SCMP_ACT_ERRNO(errnum);
	if (!strcmp(name, "trace"))
		return SCMP_ACT_TRACE(errnum);
	if (!strcmp(name, "trap"))
		return SCMP_ACT_TRAP;
	if (!strcmp(name, "log"))
		return SCMP_ACT_LOG;
	if (!strcmp(name, "kill-thread"))
		return SCMP_ACT_KILL;
	if (!strcmp(name, "kill-process"))
		return SCMP_ACT_KILL_PROCESS;
	fail("berth-exec: unknown seccomp action %s", name);
	return 0;
}

static enum scmp_compare compare(const char *op)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{ "ne", SCMP_CMP_NE },	       { "lt", SCMP_CMP_LT }, { "le", SCMP_CMP_LE },
		{ "eq", SCMP_CMP_EQ },	       { "ge", SCMP_CMP_GE }, { "gt", SCMP_CMP_GT },
		{ "masked-eq", SCMP_CMP_MASKED_EQ },
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (!strcmp(op, ops[i].name))
			return ops[i].op;
	fail("berth-exec: unknown seccomp operator %s", op);
	return 0;
}

static void seccomp_rule(struct config *c, struct tokens *t)
{
	uint32_t act = action(t);
	const char *name = token(t, "seccomp syscall");
	uint64_t nargs = number(t, "seccomp argument count");
	struct scmp_arg_cmp args[6];
	if (nargs > 6)
		fail("berth-exec: seccomp rule for %s has %" PRIu64 " arguments", name, nargs);
	for (uint64_t i = 0; i < nargs; i++) {
		args[i].arg = number(t, "seccomp argument index");
		args[i].op = compare(token(t, "seccomp operator"));
		args[i].datum_a = number(t, "seccomp value");
		args[i].datum_b = number(t, "seccomp value two");
	}
	if (!c->seccomp)
		fail("berth-exec: seccomp rule before the filter");
	// berthd resolved the name and skipped those this libseccomp does not
	// know, as runc does.
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return;
	int err = seccomp_rule_add_array(c->seccomp, act, nr, nargs, args);
	if (err)
		fail("berth-exec: seccomp rule for %s: %s", name, strerror(-err));
}

static void parse(struct config *c, char *buf, size_t len)
{
	struct tokens t = { buf, buf + len };
	c->pidfd = -1;
	while (t.next < t.end) {
		const char *key = token(&t, "a key");
		if (!strcmp(key, "pidfd")) {
			c->pidfd = number(&t, key);
		} else if (!strcmp(key, "pid")) {
			c->pid = number(&t, key);
		} else if (!strcmp(key, "ns")) {
			c->nsflags = number(&t, key);
		} else if (!strcmp(key, "cgroup")) {
			if (c->ncgroups == (int)(sizeof c->cgroups / sizeof c->cgroups[0]))
				fail("berth-exec: too many cgroups");
			c->cgroups[c->ncgroups++] = token(&t, key);
		} else if (!strcmp(key, "oom")) {
			c->has_oom = 1;
			c->oom = snumber(&t, key);
		} else if (!strcmp(key, "arg")) {
			if (c->argc == MAX_LIST)
				fail("berth-exec: too many arguments");
			c->argv[c->argc++] = token(&t, key);
		} else if (!strcmp(key, "env")) {
			if (c->envc == MAX_LIST)
				fail("berth-exec: too many environment variables");
			c->envp[c->envc++] = token(&t, key);
		} else if (!strcmp(key, "cwd")) {
			c->cwd = token(&t, key);
		} else if (!strcmp(key, "uid")) {
			c->uid = number(&t, key);
		} else if (!strcmp(key, "gid")) {
			c->gid = number(&t, key);
		} else if (!strcmp(key, "group")) {
			if (c->ngroups == (int)(sizeof c->groups / sizeof c->groups[0]))
				fail("berth-exec: too many groups");
			c->groups[c->ngroups++] = number(&t, key);
		} else if (!strcmp(key, "umask")) {
			c->has_umask = 1;
			c->umask = number(&t, key);
		} else if (!strcmp(key, "cap")) {
			static const char *sets[CAP_SETS] = { "bnd", "eff", "prm", "inh", "amb" };
			const char *set = token(&t, key);
			int i = 0;
			while (i < CAP_SETS && strcmp(set, sets[i]))
				i++;
			if (i == CAP_SETS)
				fail("berth-exec: unknown capability set %s", set);
			c->caps[i] = number(&t, key);
			c->has_caps = 1;
		} else if (!strcmp(key, "rlimit")) {
			if (c->nrlimits == RLIM_NLIMITS)
				fail("berth-exec: too many rlimits");
			struct rlim *r = &c->rlimits[c->nrlimits++];
			r->resource = number(&t, key);
			r->limit.rlim_cur = number(&t, key);
			r->limit.rlim_max = number(&t, key);
		} else if (!strcmp(key, "keyring")) {
			c->keyring = token(&t, key);
		} else if (!strcmp(key, "nnp")) {
			c->nnp = 1;
		} else if (!strcmp(key, "seccomp")) {
			c->seccomp = seccomp_init(action(&t));
			if (!c->seccomp)
				fail("berth-exec: seccomp_init failed");
			// no_new_privs is ours to set (or not), as in runc.
			seccomp_attr_set(c->seccomp, SCMP_FLTATR_CTL_NNP, 0);
		} else if (!strcmp(key, "seccomp-arch")) {
			const char *name = token(&t, key);
			uint32_t arch = seccomp_arch_resolve_name(name);
			if (!arch || !c->seccomp)
				fail("berth-exec: seccomp architecture %s", name);
			int err = seccomp_arch_add(c->seccomp, arch);
			if (err && err != -EEXIST)
				fail("berth-exec: seccomp architecture %s: %s", name, strerror(-err));
		} else if (!strcmp(key, "seccomp-flag")) {
			const char *name = token(&t, key);
			int err = -EINVAL;
			if (c->seccomp && !strcmp(name, "log"))
				err = seccomp_attr_set(c->seccomp, SCMP_FLTATR_CTL_LOG, 1);
			else if (c->seccomp && !strcmp(name, "spec-allow"))
				err = seccomp_attr_set(c->seccomp, SCMP_FLTATR_CTL_SSB, 1);
			else if (c->seccomp && !strcmp(name, "optimize"))
				err = seccomp_attr_set(c->seccomp, SCMP_FLTATR_CTL_OPTIMIZE, 2);
			if (err && strcmp(name, "optimize"))
				fail("berth-exec: seccomp flag %s: %s", name, strerror(-err));
		} else if (!strcmp(key, "seccomp-rule")) {
			seccomp_rule(c, &t);
		} else {
			fail("berth-exec: unknown key %s", key);
		}
	}
	if (c->argc == 0)
		fail("berth-exec: no command");
	if (c->pidfd < 0)
		fail("berth-exec: no pidfd");
}

static char *read_config(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			fail("berth-exec: out of memory");
		ssize_t r = pread(CONFIG_FD, buf + n, cap - n, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("berth-exec: read configuration: %s", strerror(errno));
		if (r == 0)
			break;
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	close(CONFIG_FD);
	if (n == 0 || buf[n - 1] != '\0')
		fail("berth-exec: configuration is not NUL-terminated");
	*len = n;
	return buf;
}

// Joining the container.

static void join_namespaces(struct config *c)
{
	if (!c->nsflags)
		return;
	if (setns(c->pidfd, c->nsflags) == 0)
		return;
	if (errno != EINVAL || c->pid <= 0)
		fail("berth-exec: join the container's namespaces: %s", strerror(errno));
	// Before Linux 5.8 setns takes namespace files, not a pidfd. The pidfd
	// still pins the identity: the files are opened first, then the
	// process is checked to be alive, so they are not a reused pid's.
	static const struct {
		int flag;
		const char *name;
	} order[] = {
		{ CLONE_NEWIPC, "ipc" }, { CLONE_NEWUTS, "uts" },       { CLONE_NEWNET, "net" },
		{ CLONE_NEWPID, "pid" }, { CLONE_NEWCGROUP, "cgroup" }, { CLONE_NEWNS, "mnt" },
	};
	int fds[6];
	for (int i = 0; i < 6; i++) {
		fds[i] = -1;
		if (!(c->nsflags & order[i].flag))
			continue;
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/ns/%s", c->pid, order[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			fail("berth-exec: open %s: %s", path, strerror(errno));
	}
	if (syscall(SYS_pidfd_send_signal, c->pidfd, 0, NULL, 0) < 0)
		fail("berth-exec: the container's init is gone: %s", strerror(errno));
	for (int i = 0; i < 6; i++) {
		if (fds[i] < 0)
			continue;
		if (setns(fds[i], order[i].flag) < 0)
			fail("berth-exec: join the container's %s namespace: %s", order[i].name,
			     strerror(errno));
		close(fds[i]);
	}
}

// open_cgroups opens the cgroup.procs files while the host's mounts are
// still in view; the child joins them once it runs.
static void open_cgroups(struct config *c, int *fds)
{
	for (int i = 0; i < c->ncgroups; i++) {
		fds[i] = open(c->cgroups[i], O_WRONLY | O_CLOEXEC);
		if (fds[i] < 0)
			fail("berth-exec: open %s: %s", c->cgroups[i], strerror(errno));
	}
}

static void join_cgroups(struct config *c, int *fds)
{
	for (int i = 0; i < c->ncgroups; i++) {
		if (write(fds[i], "0", 1) != 1)
			fail("berth-exec: join cgroup %s: %s", c->cgroups[i], strerror(errno));
		close(fds[i]);
	}
}

static void set_oom_score_adj(struct config *c)
{
	if (!c->has_oom)
		return;
	char v[16];
	int n = snprintf(v, sizeof v, "%d", c->oom);
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, n) != n)
		fail("berth-exec: set oom_score_adj %d: %s", c->oom, strerror(errno));
	close(fd);
}

// Identity and confinement, in runc's order.

static void set_rlimits(struct config *c)
{
	for (int i = 0; i < c->nrlimits; i++)
		if (setrlimit(c->rlimits[i].resource, &c->rlimits[i].limit) < 0)
			fail("berth-exec: setrlimit %d: %s", c->rlimits[i].resource, strerror(errno));
}

static void drop_bounding(struct config *c)
{
	if (!c->has_caps)
		return;
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (cap < 64 && (c->caps[CAP_BND] >> cap) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			fail("berth-exec: drop capability %d from the bounding set: %s", cap, strerror(errno));
	}
}

static void set_user(struct config *c)
{
	if (setgroups(c->ngroups, c->groups) < 0)
		fail("berth-exec: setgroups: %s", strerror(errno));
	if (setresgid(c->gid, c->gid, c->gid) < 0)
		fail("berth-exec: setgid %u: %s", c->gid, strerror(errno));
	if (setresuid(c->uid, c->uid, c->uid) < 0)
		fail("berth-exec: setuid %u: %s", c->uid, strerror(errno));
}

static void set_caps(struct config *c)
{
	if (!c->has_caps)
		return;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = c->caps[CAP_EFF] >> (32 * i);
		data[i].permitted = c->caps[CAP_PRM] >> (32 * i);
		data[i].inheritable = c->caps[CAP_INH] >> (32 * i);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("berth-exec: capset: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail("berth-exec: clear ambient capabilities: %s", strerror(errno));
	for (int cap = 0; cap < 64; cap++)
		if ((c->caps[CAP_AMB] >> cap) & 1)
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

static void load_seccomp(struct config *c)
{
	int err = seccomp_load(c->seccomp);
	if (err)
		fail("berth-exec: load the seccomp filter: %s", strerror(-err));
}

// find resolves argv[0] against the process's PATH, as runc does (Go's
// exec.LookPath), in the container's filesystem.
static const char *find(struct config *c, char *buf, size_t size)
{
	const char *name = c->argv[0];
	struct stat st;
	if (strchr(name, '/')) {
		if (stat(name, &st) < 0)
			fail("exec: \"%s\": stat %s: %s", name, name, strerror(errno));
		if (S_ISDIR(st.st_mode) || faccessat(AT_FDCWD, name, X_OK, AT_EACCESS) < 0)
			fail("exec: \"%s\": permission denied", name);
		return name;
	}
	const char *path = NULL;
	for (int i = 0; i < c->envc; i++)
		if (!strncmp(c->envp[i], "PATH=", 5))
			path = c->envp[i] + 5;
	for (const char *dir = path; dir;) {
		const char *colon = strchr(dir, ':');
		size_t n = colon ? (size_t)(colon - dir) : strlen(dir);
		if (n == 0)
			snprintf(buf, size, "./%s", name);
		else
			snprintf(buf, size, "%.*s/%s", (int)n, dir, name);
		if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode) &&
		    faccessat(AT_FDCWD, buf, X_OK, AT_EACCESS) == 0)
			return buf;
		dir = colon ? colon + 1 : NULL;
	}
	fail("exec: \"%s\": executable file not found in $PATH", name);
	return NULL;
}

// fix_stdio gives the command's standard streams to its user, as runc
// does, so that it can reopen them (/dev/stdout, /proc/self/fd/1).
static void fix_stdio(struct config *c)
{
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			fail("berth-exec: fstat %d: %s", fd, strerror(errno));
		if (st.st_uid == c->uid || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)))
			continue;
		if (fchown(fd, c->uid, -1) < 0 && errno != EPERM && errno != EROFS)
			fail("berth-exec: chown fd %d: %s", fd, strerror(errno));
	}
}

// The order is runc's (libcontainer's setns init): what needs privilege
// first, the user change, then what confines the command, seccomp last.
static void run_child(struct config *c, int *cgroupfds, pid_t parent)
{
	join_cgroups(c, cgroupfds);
	if (setsid() < 0)
		fail("berth-exec: setsid: %s", strerror(errno));
	set_rlimits(c);
	if (c->keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->keyring) < 0 &&
	    errno != ENOSYS)
		fail("berth-exec: join session keyring: %s", strerror(errno));
	if (c->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("berth-exec: no_new_privs: %s", strerror(errno));
	if (c->has_umask)
		umask(c->umask);
	// Without no_new_privs, loading a filter is privileged: do it while
	// still root. With it, do it last, so the filter sees only execve.
	if (c->seccomp && !c->nnp)
		load_seccomp(c);
	drop_bounding(c);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail("berth-exec: keep capabilities: %s", strerror(errno));
	// The working directory may be reachable only by root (before) or
	// only by the user (after, e.g. on a root-squashed NFS export).
	int inCwd = !c->cwd || chdir(c->cwd) == 0;
	fix_stdio(c);
	set_user(c);
	if (!inCwd && chdir(c->cwd) < 0)
		fail("berth-exec: chdir to cwd (\"%s\") set in config.json failed: %s", c->cwd,
		     strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail("berth-exec: reset keep capabilities: %s", strerror(errno));
	set_caps(c);
	char pathbuf[4096];
	const char *path = find(c, pathbuf, sizeof pathbuf);
	// Set after the uid change, which clears it.
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail("berth-exec: parent death signal: %s", strerror(errno));
	if (getppid() != parent)
		_exit(128 + SIGKILL);
	if (c->seccomp && c->nnp)
		load_seccomp(c);
	c->envp[c->envc] = NULL;
	c->argv[c->argc] = NULL;
	execve(path, c->argv, c->envp);
	fail("exec: \"%s\": %s", c->argv[0], strerror(errno));
}

struct start {
	struct config *c;
	int *cgroupfds;
	pid_t self;
	sigset_t mask;
};

static int start_child(void *arg)
{
	struct start *st = arg;
	signal(SIGTERM, SIG_DFL);
	sigprocmask(SIG_SETMASK, &st->mask, NULL);
	// In another pid namespace the parent is outside it and getppid
	// says 0; anything else but the helper means it is gone already.
	pid_t parent = getppid();
	if (parent != 0 && parent != st->self)
		_exit(128 + SIGKILL);
	run_child(st->c, st->cgroupfds, parent);
	return 127;
}

static void on_term(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
	else
		_exit(128 + SIGKILL);
}

int main(void)
{
	static struct config c;
	size_t len;
	char *buf = read_config(&len);
	parse(&c, buf, len);
	if (fcntl(ERROR_FD, F_SETFD, FD_CLOEXEC) < 0)
		fail("berth-exec: error pipe: %s", strerror(errno));

	struct sigaction sa = { .sa_handler = on_term };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);

	int cgroupfds[64];
	open_cgroups(&c, cgroupfds);
	set_oom_score_adj(&c);
	join_namespaces(&c);
	close(c.pidfd);

	struct start st = { .c = &c, .cgroupfds = cgroupfds, .self = getpid() };
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &st.mask);
	// The child shares this memory and runs while this process waits
	// (CLONE_VFORK) until it execs: no page tables to copy, which is most
	// of what a fork costs, and nothing here runs meanwhile to race it.
	size_t stack_size = 256 << 10;
	char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		fail("berth-exec: child stack: %s", strerror(errno));
	pid_t pid = clone(start_child, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &st);
	if (pid < 0)
		fail("berth-exec: clone: %s", strerror(errno));
	sigset_t old = st.mask;
	child = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < c.ncgroups; i++)
		close(cgroupfds[i]);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("berth-exec: wait: %s", strerror(errno));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
