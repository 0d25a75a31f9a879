package enter

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUnsupportedLeavesToRuncWhatBerthExecCannotHonour(t *testing.T) {
	errno := uint(38)
	for name, tc := range map[string]struct {
		spec specs.Spec
		proc specs.Process
		want string // "" = supported
	}{
		"plain": {proc: specs.Process{Args: []string{"true"}}},
		"berth's default seccomp": {spec: specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno}}}}}, proc: specs.Process{Args: []string{"true"}}},
		"terminal":   {proc: specs.Process{Args: []string{"sh"}, Terminal: true}, want: "terminal"},
		"apparmor":   {proc: specs.Process{Args: []string{"true"}, ApparmorProfile: "p"}, want: "AppArmor"},
		"no args":    {proc: specs.Process{}, want: "no command"},
		"user ns":    {spec: specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace}}}}, proc: specs.Process{Args: []string{"true"}}, want: "user namespace"},
		"bad cap":    {proc: specs.Process{Args: []string{"true"}, Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_NOPE"}}}, want: "CAP_NOPE"},
		"bad rlimit": {proc: specs.Process{Args: []string{"true"}, Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOPE"}}}, want: "RLIMIT_NOPE"},
		"deny by default": {spec: specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &errno}}},
			proc: specs.Process{Args: []string{"true"}}, want: "denies by default"},
		"notify": {spec: specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}}}}}, proc: specs.Process{Args: []string{"true"}}, want: "SCMP_ACT_NOTIFY"},
		"wait killable": {spec: specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}}}}, proc: specs.Process{Args: []string{"true"}}, want: "WAIT_KILLABLE_RECV"},
	} {
		err := Unsupported(&tc.spec, &tc.proc)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want supported", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
}

func tokens(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func TestEncodeCarriesTheWholeProcess(t *testing.T) {
	oom, umask := 500, uint32(0o27)
	proc := &specs.Process{
		Args: []string{"sh", "-c", "echo a b"}, Env: []string{"PATH=/bin", "A=1=2"}, Cwd: "/tmp",
		User:            specs.User{UID: 1000, GID: 3000, AdditionalGids: []uint32{4000, 5000}, Umask: &umask},
		Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_KILL"}, Ambient: []string{"CAP_NET_BIND_SERVICE"}},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}},
		NoNewPrivileges: true, OOMScoreAdj: &oom,
	}
	b, err := encode(target{id: "abc", pidfd: 5, pid: 42, nsFlags: 7, cgroups: []string{"/sys/fs/cgroup/memory/x/cgroup.procs"}}, &specs.Spec{}, proc)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tokens(b), " ")
	want := "pidfd 5 pid 42 ns 7 cgroup /sys/fs/cgroup/memory/x/cgroup.procs oom 500 arg sh arg -c arg echo a b " +
		"env PATH=/bin env A=1=2 cwd /tmp uid 1000 gid 3000 group 4000 group 5000 umask 23 " +
		"cap bnd 33 cap eff 32 cap prm 0 cap inh 0 cap amb 1024 rlimit 7 1024 4096 keyring _ses.abc nnp"
	if got != want {
		t.Errorf("tokens:\n got %s\nwant %s", got, want)
	}
	if !bytes.HasSuffix(b, []byte{0}) {
		t.Error("the last token is not NUL-terminated")
	}
}

func TestSeccompTokensMakeRuncsChoices(t *testing.T) {
	e := uint(13)
	toks, err := seccompTokens(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mount", "umount2"}, Action: specs.ActErrno}, // EPERM by default
			{Names: []string{"getpid"}, Action: specs.ActAllow},           // the default: dropped
			{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: &e},
			{Names: []string{"clone"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{ // one argument twice: a rule each
				{Index: 0, Value: 1, ValueTwo: 1, Op: specs.OpMaskedEqual}, {Index: 0, Value: 2, ValueTwo: 2, Op: specs.OpMaskedEqual}}},
			{Names: []string{"socket"}, Action: specs.ActKill, Args: []specs.LinuxSeccompArg{ // two arguments: one rule
				{Index: 0, Value: 16, Op: specs.OpEqualTo}, {Index: 2, Value: 9, Op: specs.OpNotEqual}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(toks, " ")
	want := "seccomp allow 0 seccomp-arch x86_64 seccomp-arch x86 seccomp-flag log " +
		"seccomp-rule errno 1 mount 0 seccomp-rule errno 1 umount2 0 seccomp-rule errno 13 kill 0 " +
		"seccomp-rule errno 1 clone 1 0 masked-eq 1 1 seccomp-rule errno 1 clone 1 0 masked-eq 2 2 " +
		"seccomp-rule kill-thread 0 socket 2 0 eq 16 0 2 ne 9 0"
	if got != want {
		t.Errorf("tokens:\n got %s\nwant %s", got, want)
	}
	many := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}
	for i := range 33 {
		many.Syscalls[0].Names = append(many.Syscalls[0].Names, "s"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if toks, _ := seccompTokens(many); !slices.Contains(toks, "optimize") {
		t.Error("more than 32 syscalls: no binary tree, unlike runc")
	}
}

const hybridMountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
41 30 0:38 /sub /mnt/my\040pids rw,relatime - cgroup cgroup rw,pids
`

func TestProcsFilesJoinEveryHierarchyOfTheContainer(t *testing.T) {
	mounts, err := cgroupMounts(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	proc := "12:pids:/sub/kubepods/c1\n9:name=systemd:/kubepods/c1\n4:memory:/kubepods/c1\n2:cpuacct,cpu:/kubepods/c1\n1:blkio:/kubepods/c1\n0::/kubepods/c1\n"
	got, err := procsFiles([]byte(proc), mounts, "kubepods/c1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/mnt/my pids/kubepods/c1/cgroup.procs",
		"/sys/fs/cgroup/systemd/kubepods/c1/cgroup.procs",
		"/sys/fs/cgroup/memory/kubepods/c1/cgroup.procs",
		"/sys/fs/cgroup/cpu,cpuacct/kubepods/c1/cgroup.procs",
		"/sys/fs/cgroup/unified/kubepods/c1/cgroup.procs",
	}
	if !slices.Equal(got, want) {
		t.Errorf("files:\n got %q\nwant %q", got, want)
	}
	// A pid that was reused by another process is not the container's.
	if _, err := procsFiles([]byte("4:memory:/other\n0::/other\n"), mounts, "kubepods/c1"); err == nil {
		t.Error("a process outside the container's cgroup was accepted")
	}
	// On a unified host the unified hierarchy names the container.
	unified, err := cgroupMounts(strings.NewReader("25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = procsFiles([]byte("0::/kubepods.slice/cri-berth-c1.scope\n"), unified, "/kubepods.slice/cri-berth-c1.scope")
	if err != nil || !slices.Equal(got, []string{"/sys/fs/cgroup/kubepods.slice/cri-berth-c1.scope/cgroup.procs"}) {
		t.Errorf("unified: %q, %v", got, err)
	}
}
