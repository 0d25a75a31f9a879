package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"

	"github.com/berth-project/berth/test/testutil"
)

// What a container runs, as whom, with what it can see and do: each test
// asserts on what the process itself observes (its output, /proc, exit).

func TestCommandEntrypointAndArgs(t *testing.T) {
	e := newEnv(t)
	const img = "berth.test/entrypoint:1"
	e.importImage(img, v1.Config{Entrypoint: []string{"echo", "entry"}, Cmd: []string{"from-cmd"}})
	pod := e.podConfig("cmd")
	podID := e.runPod(pod)

	for _, tc := range []struct {
		name          string
		image         string
		command, args []string
		want          string
	}{
		{"image-defaults", img, nil, nil, "entry from-cmd"},
		{"args-replace-cmd", img, nil, []string{"from-args"}, "entry from-args"},
		{"command-drops-cmd", img, []string{"echo", "command"}, nil, "command"},
		{"command-and-args", img, []string{"echo", "command"}, []string{"from-args"}, "command from-args"},
		// The test image has Cmd ["sh"] and no Entrypoint.
		{"args-without-entrypoint", busybox, nil, []string{"echo", "only-args"}, "only-args"},
	} {
		cfg := containerConfig(tc.name, tc.command, withImage(tc.image), withArgs(tc.args...))
		st, out := e.runToExit(podID, pod, cfg)
		if st.GetExitCode() != 0 || out != tc.want+"\n" {
			t.Errorf("%s: exit %d, output %q; want exit 0, output %q", tc.name, st.GetExitCode(), out, tc.want+"\n")
		}
	}
}

func TestEnvAndWorkingDir(t *testing.T) {
	e := newEnv(t)
	const withEnvImg, noPathImg = "berth.test/env:1", "berth.test/nopath:1"
	e.importImage(withEnvImg, v1.Config{
		Env:        []string{"PATH=/bin", "FROM_IMAGE=image", "OVERRIDDEN=image"},
		WorkingDir: "/home/app",
	})
	e.importImage(noPathImg, v1.Config{Env: []string{"ONLY=image"}})
	pod := e.podConfig("envpod")
	podID := e.runPod(pod)

	// Image env, then the request's, which wins; HOME from root's passwd
	// entry; HOSTNAME from the pod.
	_, out := e.runToExit(podID, pod, containerConfig("env", []string{"env"}, withImage(withEnvImg),
		withEnv("OVERRIDDEN", "request"), withEnv("FROM_REQUEST", "request"),
		withEnv("WITH_EQUALS", "a=b"), withEnv("EMPTY", "")))
	got := parseEnv(out)
	for k, v := range map[string]string{
		"PATH": "/bin", "FROM_IMAGE": "image", "OVERRIDDEN": "request", "FROM_REQUEST": "request",
		"WITH_EQUALS": "a=b", "HOME": "/root", "HOSTNAME": "envpod",
	} {
		if got[k] != v {
			t.Errorf("env %s = %q, want %q (whole env:\n%s)", k, got[k], v, out)
		}
	}
	if v, ok := got["EMPTY"]; !ok || v != "" {
		t.Errorf("env EMPTY = %q (set: %v), want set and empty", v, ok)
	}
	// An image without PATH still finds its commands: the default PATH.
	_, out = e.runToExit(podID, pod, containerConfig("nopath", []string{"env"}, withImage(noPathImg)))
	if got := parseEnv(out); got["ONLY"] != "image" || !strings.Contains(got["PATH"], "/bin") {
		t.Errorf("env without an image PATH:\n%s\nwant ONLY=image and a default PATH", out)
	}

	for _, tc := range []struct {
		name string
		opts []ctrOpt
		want string
	}{
		{"wd-image", []ctrOpt{withImage(withEnvImg)}, "/home/app"},
		{"wd-request", []ctrOpt{withImage(withEnvImg), withWorkingDir("/tmp")}, "/tmp"},
		{"wd-default", nil, "/"},
		// A missing working directory is created, as docker and containerd do.
		{"wd-missing", []ctrOpt{withWorkingDir("/does/not/exist")}, "/does/not/exist"},
	} {
		_, out := e.runToExit(podID, pod, containerConfig(tc.name, []string{"pwd"}, tc.opts...))
		if out != tc.want+"\n" {
			t.Errorf("%s: pwd = %q, want %q", tc.name, out, tc.want)
		}
	}
}

func TestRunAsUserAndGroups(t *testing.T) {
	e := newEnv(t)
	const appImg, appStaffImg = "berth.test/app-user:1", "berth.test/app-staff:1"
	e.importImage(appImg, v1.Config{User: "app"})
	e.importImage(appStaffImg, v1.Config{User: "app:staff"})
	pod := e.podConfig("users")
	podID := e.runPod(pod)

	cmd := []string{"sh", "-c", `id -u; id -g; id -G; echo "$HOME"`}
	for _, tc := range []struct {
		name   string
		opts   []ctrOpt
		uid    string
		gid    string
		groups []string // all of `id -G`, primary included
		home   string
	}{
		{"default-root", nil, "0", "0", []string{"0"}, "/root"},
		{"run-as-user", []ctrOpt{withRunAsUser(1000)}, "1000", "1000", []string{"1000", "50"}, "/home/app"},
		{"run-as-user-and-group", []ctrOpt{withRunAsUser(1000), withRunAsGroup(2000)}, "1000", "2000", []string{"2000", "50"}, "/home/app"},
		{"uid-not-in-passwd", []ctrOpt{withRunAsUser(1234)}, "1234", "0", []string{"0"}, "/"},
		{"image-user-name", []ctrOpt{withImage(appImg)}, "1000", "1000", []string{"1000", "50"}, "/home/app"},
		{"image-user-and-group", []ctrOpt{withImage(appStaffImg)}, "1000", "50", []string{"50"}, "/home/app"},
		{"image-user-run-as-root", []ctrOpt{withImage(appImg), withRunAsUser(0)}, "0", "0", []string{"0"}, "/root"},
		{"supplemental-groups", []ctrOpt{withImage(appImg), withSupplementalGroups(3000, 4000)}, "1000", "1000", []string{"1000", "50", "3000", "4000"}, "/home/app"},
		{"run-as-username", []ctrOpt{func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.RunAsUsername = "app" }}, "1000", "1000", []string{"1000", "50"}, "/home/app"},
	} {
		st, out := e.runToExit(podID, pod, containerConfig(tc.name, cmd, tc.opts...))
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if st.GetExitCode() != 0 || len(lines) != 4 {
			t.Errorf("%s: exit %d, output %q", tc.name, st.GetExitCode(), out)
			continue
		}
		groups := strings.Fields(lines[2])
		slices.Sort(groups)
		groups = slices.Compact(groups)
		slices.Sort(tc.groups)
		if lines[0] != tc.uid || lines[1] != tc.gid || !slices.Equal(groups, tc.groups) || lines[3] != tc.home {
			t.Errorf("%s: uid %s gid %s groups %v HOME %s; want uid %s gid %s groups %v HOME %s",
				tc.name, lines[0], lines[1], groups, lines[3], tc.uid, tc.gid, tc.groups, tc.home)
		}
	}

	// The primary group is among the process's groups (getgroups), as
	// with containerd: `id` shows groups=1000(app),50(staff).
	st, out := e.runToExit(podID, pod, containerConfig("kernel-groups", []string{"sh", "-c", "grep ^Groups: /proc/self/status"}, withRunAsUser(1000)))
	if got := strings.Fields(strings.TrimPrefix(strings.TrimSpace(out), "Groups:")); st.GetExitCode() != 0 || !slices.Contains(got, "1000") || !slices.Contains(got, "50") {
		t.Errorf("the kernel's groups of the process: %q, want 1000 and 50", out)
	}

	// An exec runs as the container's user too.
	id := e.start(podID, pod, containerConfig("exec-user", []string{"sleep", "3600"}, withImage(appImg)))
	if out := e.mustExec(id, "id", "-u"); out != "1000" {
		t.Errorf("exec id -u = %q, want 1000", out)
	}

	// A user name the image does not know fails the create, naming it.
	const noUserImg = "berth.test/no-such-user:1"
	e.importImage(noUserImg, v1.Config{User: "nosuchuser"})
	_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: pod,
		Config: containerConfig("no-such-user", []string{"true"}, withImage(noUserImg)),
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "nosuchuser") {
		t.Errorf("unknown image user: %v; want InvalidArgument naming nosuchuser", err)
	}
}

func TestHostMountsAndDevices(t *testing.T) {
	// Made before the env, so they are removed after its containers.
	rw, ro := t.TempDir(), t.TempDir()
	e := newEnv(t)
	mustWrite(t, filepath.Join(rw, "in.txt"), "from-host\n")
	mustWrite(t, filepath.Join(ro, "in.txt"), "read-only\n")
	conf := filepath.Join(ro, "app.conf")
	mustWrite(t, conf, "key=value\n")

	pod := e.podConfig("mounts")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"},
		withMount(rw, "/data", false),
		withMount(ro, "/ro", true),
		withMount(conf, "/etc/app.conf", true),
		withDevice("/dev/zero", "/dev/myzero", "r")))

	if out := e.mustExec(id, "cat", "/data/in.txt"); out != "from-host" {
		t.Errorf("/data/in.txt = %q, want from-host", out)
	}
	e.mustExec(id, "sh", "-c", "echo from-container > /data/out.txt")
	if data, err := os.ReadFile(filepath.Join(rw, "out.txt")); err != nil || string(data) != "from-container\n" {
		t.Errorf("host sees %q (%v), want the file the container wrote", data, err)
	}

	if out := e.mustExec(id, "cat", "/ro/in.txt"); out != "read-only" {
		t.Errorf("/ro/in.txt = %q, want read-only", out)
	}
	_, stderr, code := e.exec(id, "touch", "/ro/new")
	if code == 0 || !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("touch in a read-only mount: code %d, stderr %q; want a read-only failure", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Error("a file appeared in the read-only host dir")
	}

	if out := e.mustExec(id, "cat", "/etc/app.conf"); out != "key=value" {
		t.Errorf("/etc/app.conf = %q, want key=value", out)
	}
	if _, _, code := e.exec(id, "sh", "-c", "echo x >> /etc/app.conf"); code == 0 {
		t.Error("writing a read-only file mount succeeded")
	}

	if out := e.mustExec(id, "stat", "-c", "%F %t:%T", "/dev/myzero"); out != "character special file 1:5" {
		t.Errorf("/dev/myzero is %q, want character special file 1:5", out)
	}
	if out := e.mustExec(id, "sh", "-c", "head -c 4096 /dev/myzero | wc -c"); out != "4096" {
		t.Errorf("read %s bytes from /dev/myzero, want 4096", out)
	}
	// Host devices that were not asked for are not there.
	if _, _, code := e.exec(id, "test", "-e", "/dev/kmsg"); code == 0 {
		t.Error("/dev/kmsg exists in an unprivileged container")
	}

	// Missing host paths fail the create, naming the path.
	missing := filepath.Join(rw, "missing")
	for name, opt := range map[string]ctrOpt{
		"missing-mount":  withMount(missing, "/data", false),
		"missing-device": withDevice(missing, "/dev/mydev", "rwm"),
	} {
		_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
			PodSandboxId: podID, SandboxConfig: pod, Config: containerConfig(name, []string{"true"}, opt),
		})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: %v; want InvalidArgument naming %s", name, err, missing)
		}
	}
}

// Capability masks as /proc/<pid>/status shows them.
const (
	capNetBindService = 10
	capNetRaw         = 13
	capSysAdmin       = 21
	capSysResource    = 24
	// dockerDefaultCapEff is the default set docker and containerd grant:
	// CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
	// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
	dockerDefaultCapEff = 0xa80425fb
)

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("caps")
	podID := e.runPod(pod)
	sleep := []string{"sleep", "3600"}

	def := e.start(podID, pod, containerConfig("default", sleep, withContainerPID()))
	if got := e.capEff(def); got != dockerDefaultCapEff {
		t.Errorf("default CapEff = %#x, want %#x", got, dockerDefaultCapEff)
	}
	// Root without CAP_SYS_ADMIN cannot mount.
	if _, stderr, code := e.exec(def, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m"); code == 0 {
		t.Error("mount succeeded without CAP_SYS_ADMIN")
	} else if !strings.Contains(stderr, "denied") && !strings.Contains(stderr, "not permitted") {
		t.Errorf("mount without CAP_SYS_ADMIN: %q, want a permission error", stderr)
	}

	addDrop := e.start(podID, pod, containerConfig("add-drop", sleep, withContainerPID(),
		withCapabilities([]string{"SYS_ADMIN"}, []string{"NET_RAW"})))
	got := e.capEff(addDrop)
	if got&(1<<capSysAdmin) == 0 || got&(1<<capNetRaw) != 0 {
		t.Errorf("add SYS_ADMIN drop NET_RAW: CapEff = %#x", got)
	}
	if got&^(1<<capSysAdmin|1<<capNetRaw) != dockerDefaultCapEff&^(1<<capNetRaw) {
		t.Errorf("add SYS_ADMIN drop NET_RAW changed other capabilities: CapEff = %#x", got)
	}
	e.mustExec(addDrop, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && touch /tmp/m/f")

	dropAll := e.start(podID, pod, containerConfig("drop-all", sleep, withContainerPID(), withCapabilities(nil, []string{"ALL"})))
	if got := e.capEff(dropAll); got != 0 {
		t.Errorf("drop ALL: CapEff = %#x, want 0", got)
	}
	// Root without CAP_CHOWN cannot give a file away.
	if _, _, code := e.exec(dropAll, "sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"); code == 0 {
		t.Error("chown succeeded with all capabilities dropped")
	}

	only := e.start(podID, pod, containerConfig("drop-all-add-one", sleep, withContainerPID(),
		withCapabilities([]string{"NET_BIND_SERVICE"}, []string{"ALL"})))
	if got := e.capEff(only); got != 1<<capNetBindService {
		t.Errorf("drop ALL add NET_BIND_SERVICE: CapEff = %#x, want %#x", got, 1<<capNetBindService)
	}

	// A capability the node itself lacks is refused up front, naming it.
	if !hostHasCap(t, capSysResource) {
		_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
			PodSandboxId: podID, SandboxConfig: pod,
			Config: containerConfig("sys-resource", sleep, withContainerPID(), withCapabilities([]string{"SYS_RESOURCE"}, nil)),
		})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
			t.Errorf("add SYS_RESOURCE on a node without it: %v; want FailedPrecondition naming CAP_SYS_RESOURCE", err)
		}
	}
}

func TestPrivilegedContainer(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("priv", withPrivilegedPod())
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("priv", []string{"sleep", "3600"}, withContainerPID(), withPrivileged()))

	// Everything the node can grant: the runtime's bounding set.
	if got, want := e.capEff(id), hostCapBnd(t); got != want {
		t.Errorf("privileged CapEff = %#x, want the node's bounding set %#x", got, want)
	}
	if got := e.statusField(id, "Seccomp"); got != "0" {
		t.Errorf("privileged Seccomp = %s, want 0 (no filter)", got)
	}
	e.mustExec(id, "test", "-c", "/dev/kmsg")
	e.mustExec(id, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && touch /tmp/m/f")
	// Nothing is masked: the kernel's files, not /dev/null.
	for _, p := range hostPaths(maskedFiles) {
		if out := e.mustExec(id, "stat", "-c", "%F", p); out == "character special file" {
			t.Errorf("%s is masked in a privileged container", p)
		}
	}

	// A privileged container needs a privileged pod.
	plain := e.podConfig("plain")
	plainID := e.runPod(plain)
	_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: plainID, SandboxConfig: plain,
		Config: containerConfig("priv", []string{"sleep", "3600"}, withContainerPID(), withPrivileged()),
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("privileged container in an unprivileged pod: %v, want InvalidArgument", err)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	scratch := t.TempDir() // removed after the env's containers
	e := newEnv(t)
	pod := e.podConfig("rofs")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"},
		withReadonlyRootfs(), withMount(scratch, "/scratch", false)))

	for _, p := range []string{"/x", "/tmp/x", "/etc/hosts"} {
		_, stderr, code := e.exec(id, "sh", "-c", "echo x >> "+p)
		if code == 0 || !strings.Contains(stderr, "Read-only file system") {
			t.Errorf("write %s on a read-only rootfs: code %d, stderr %q; want a read-only failure", p, code, stderr)
		}
	}
	// Volumes and /dev/shm stay writable.
	e.mustExec(id, "sh", "-c", "echo ok > /scratch/f && echo ok > /dev/shm/f")
	if data, err := os.ReadFile(filepath.Join(scratch, "f")); err != nil || string(data) != "ok\n" {
		t.Errorf("volume file = %q (%v), want ok", data, err)
	}
}

func TestNoNewPrivsAndMaskedPaths(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("nnp")
	podID := e.runPod(pod)
	def := e.start(podID, pod, containerConfig("default", []string{"sleep", "3600"}, withContainerPID()))
	nnp := e.start(podID, pod, containerConfig("nnp", []string{"sleep", "3600"}, withContainerPID(), withNoNewPrivs()))

	if got := e.statusField(def, "NoNewPrivs"); got != "0" {
		t.Errorf("default NoNewPrivs = %s, want 0", got)
	}
	if got := e.statusField(nnp, "NoNewPrivs"); got != "1" {
		t.Errorf("no_new_privs NoNewPrivs = %s, want 1", got)
	}

	// Masked: files are /dev/null, directories are empty. Which of them
	// exist depends on the kernel's configuration.
	files, dirs := hostPaths(maskedFiles), hostPaths(maskedDirs)
	if len(files)+len(dirs) == 0 {
		t.Fatal("none of the default masked paths exists on this node")
	}
	for _, p := range files {
		if out := e.mustExec(def, "stat", "-c", "%F %t:%T", p); out != "character special file 1:3" {
			t.Errorf("%s is %q, want /dev/null (character special file 1:3)", p, out)
		}
		if out := e.mustExec(def, "sh", "-c", "wc -c < "+p); out != "0" {
			t.Errorf("%s has %s bytes, want 0", p, out)
		}
	}
	for _, p := range dirs {
		if out := e.mustExec(def, "ls", "-A", p); out != "" {
			t.Errorf("%s lists %q, want nothing", p, out)
		}
	}
	// Read-only: /proc/sys cannot be written, even by root with the
	// capability the file would need.
	admin := e.start(podID, pod, containerConfig("admin", []string{"sleep", "3600"}, withContainerPID(),
		withCapabilities([]string{"SYS_ADMIN"}, nil)))
	_, stderr, code := e.exec(admin, "sh", "-c", "echo berth > /proc/sys/kernel/domainname")
	if code == 0 || !strings.Contains(stderr, "Read-only file system") {
		t.Errorf("write /proc/sys/kernel/domainname: code %d, stderr %q; want a read-only failure", code, stderr)
	}
	if out := e.mustExec(admin, "cat", "/proc/sys/kernel/domainname"); out == "berth" {
		t.Error("/proc/sys/kernel/domainname was changed")
	}
}

func TestSeccompProfiles(t *testing.T) {
	dir := t.TempDir() // removed after the env's containers
	profile := filepath.Join(dir, "no-mkdir.json")
	e := newEnv(t)
	mustWrite(t, profile, `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
}`)
	pod := e.podConfig("seccomp")
	podID := e.runPod(pod)
	sleep := []string{"sleep", "3600"}
	// A new user namespace needs no capability; only the filter stops it.
	unshare := []string{"busybox", "unshare", "-U", "true"}

	unconfined := e.start(podID, pod, containerConfig("unconfined", sleep, withContainerPID(),
		withSeccomp(runtimeapi.SecurityProfile_Unconfined, "")))
	if got := e.statusField(unconfined, "Seccomp"); got != "0" {
		t.Errorf("Unconfined: Seccomp = %s, want 0", got)
	}
	if _, stderr, code := e.exec(unconfined, unshare...); code != 0 {
		t.Errorf("Unconfined: unshare -U failed (%q); want it allowed", stderr)
	}

	def := e.start(podID, pod, containerConfig("default", sleep, withContainerPID(),
		withSeccomp(runtimeapi.SecurityProfile_RuntimeDefault, "")))
	if got := e.statusField(def, "Seccomp"); got != "2" {
		t.Errorf("RuntimeDefault: Seccomp = %s, want 2 (filter)", got)
	}
	if _, stderr, code := e.exec(def, unshare...); code == 0 {
		t.Error("RuntimeDefault: unshare -U succeeded; want it blocked")
	} else if !strings.Contains(stderr, "not permitted") {
		t.Errorf("RuntimeDefault: unshare -U: %q, want Operation not permitted", stderr)
	}
	e.mustExec(def, "mkdir", "/tmp/allowed")

	// With CAP_SYS_ADMIN the default profile allows mounting.
	admin := e.start(podID, pod, containerConfig("default-admin", sleep, withContainerPID(),
		withSeccomp(runtimeapi.SecurityProfile_RuntimeDefault, ""), withCapabilities([]string{"SYS_ADMIN"}, nil)))
	if got := e.statusField(admin, "Seccomp"); got != "2" {
		t.Errorf("RuntimeDefault + SYS_ADMIN: Seccomp = %s, want 2", got)
	}
	e.mustExec(admin, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && touch /tmp/m/f")

	local := e.start(podID, pod, containerConfig("localhost", sleep, withContainerPID(),
		withSeccomp(runtimeapi.SecurityProfile_Localhost, profile)))
	if got := e.statusField(local, "Seccomp"); got != "2" {
		t.Errorf("Localhost: Seccomp = %s, want 2", got)
	}
	_, stderr, code := e.exec(local, "mkdir", "/tmp/x")
	if code == 0 || !strings.Contains(stderr, "not permitted") {
		t.Errorf("Localhost profile: mkdir code %d, stderr %q; want Operation not permitted", code, stderr)
	}
	e.mustExec(local, "touch", "/tmp/other-syscalls-work")

	// A profile that is not there fails the create, naming the file.
	missing := filepath.Join(dir, "missing.json")
	_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: pod,
		Config: containerConfig("missing", sleep, withContainerPID(), withSeccomp(runtimeapi.SecurityProfile_Localhost, missing)),
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing Localhost profile: %v; want InvalidArgument naming %s", err, missing)
	}
	// Nothing was left behind: the name is free again.
	e.start(podID, pod, containerConfig("missing", sleep, withContainerPID()))
}

func TestStopSignalsAndGracePeriod(t *testing.T) {
	e := newEnv(t)
	const usr1Img = "berth.test/usr1:1"
	e.importImage(usr1Img, v1.Config{StopSignal: "SIGUSR1"})
	pod := e.podConfig("stop")
	podID := e.runPod(pod)
	loop := "echo ready; while true; do sleep 0.1; done"

	// A process that handles SIGTERM exits cleanly within the grace period.
	graceful := e.startReady(podID, pod, containerConfig("graceful",
		[]string{"sh", "-c", "trap 'echo bye; exit 0' TERM; " + loop}))
	e.stop(graceful, 30)
	st := e.status(graceful)
	if st.GetExitCode() != 0 || st.GetReason() != "Completed" {
		t.Errorf("TERM handler: exit %d reason %q, want 0 Completed", st.GetExitCode(), st.GetReason())
	}
	if out := logText(t, st.GetLogPath()); !strings.Contains(out, "bye\n") {
		t.Errorf("TERM handler's log %q lacks bye", out)
	}

	// One that ignores it is killed when the grace period ends.
	stubborn := e.startReady(podID, pod, containerConfig("stubborn",
		[]string{"sh", "-c", "trap '' TERM; " + loop}))
	e.stop(stubborn, 1)
	st = e.status(stubborn)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 137 || st.GetReason() != "Error" {
		t.Errorf("TERM ignored: state %v exit %d reason %q, want exited 137 Error", st.GetState(), st.GetExitCode(), st.GetReason())
	}

	// The image's STOPSIGNAL is sent instead of SIGTERM.
	usr1 := e.startReady(podID, pod, containerConfig("usr1",
		[]string{"sh", "-c", "trap 'echo got-usr1; exit 0' USR1; trap 'echo got-term; exit 0' TERM; " + loop},
		withImage(usr1Img)))
	if got := e.status(usr1).GetStopSignal(); got != runtimeapi.Signal_SIGNAL_SIGUSR1 {
		t.Errorf("status stop_signal = %v, want SIGUSR1", got)
	}
	e.stop(usr1, 30)
	st = e.status(usr1)
	out := logText(t, st.GetLogPath())
	if st.GetExitCode() != 0 || !strings.Contains(out, "got-usr1\n") || strings.Contains(out, "got-term") {
		t.Errorf("STOPSIGNAL SIGUSR1: exit %d, log %q; want exit 0 after got-usr1 only", st.GetExitCode(), out)
	}
	// The default is reported as SIGTERM.
	if got := e.status(graceful).GetStopSignal(); got != runtimeapi.Signal_SIGNAL_SIGTERM {
		t.Errorf("default status stop_signal = %v, want SIGTERM", got)
	}

	// No grace period: killed at once, its handler never runs.
	now := e.startReady(podID, pod, containerConfig("no-grace",
		[]string{"sh", "-c", "trap 'echo bye; exit 0' TERM; " + loop}))
	e.stop(now, 0)
	st = e.status(now)
	if st.GetExitCode() != 137 || strings.Contains(logText(t, st.GetLogPath()), "bye") {
		t.Errorf("stop with timeout 0: exit %d, log %q; want 137 without bye", st.GetExitCode(), logText(t, st.GetLogPath()))
	}
	// Stopping a stopped container changes nothing.
	e.stop(now, 10)
	if again := e.status(now); again.GetExitCode() != 137 || again.GetFinishedAt() != st.GetFinishedAt() {
		t.Errorf("second stop changed the status: exit %d finished %d, was 137 at %d", again.GetExitCode(), again.GetFinishedAt(), st.GetFinishedAt())
	}
}

func TestExecSyncTimeout(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("exectimeout")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	_, err := e.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "60"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("ExecSync sleep 60 with timeout 1: %v, want DeadlineExceeded", err)
	}
	testutil.Eventually(t, "the timed-out exec to be gone", func() bool {
		out := e.mustExec(id, "ps", "-o", "args")
		return !slices.Contains(strings.Split(out, "\n"), "sleep 60")
	})
	// The container is unharmed.
	if st := e.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container state after the exec timeout: %v", st.GetState())
	}
	if out := e.mustExec(id, "echo", "still-here"); out != "still-here" {
		t.Errorf("exec after timeout = %q", out)
	}
}

// The runtime's default masked paths that are files and directories.
var (
	maskedFiles = []string{"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug"}
	maskedDirs  = []string{"/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
)

// hostPaths are those of paths that exist on this node.
func hostPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// --- helpers ---

// importImage builds a busybox image with cfg and imports it as ref.
func (e *env) importImage(ref string, cfg v1.Config) {
	e.t.Helper()
	img, err := harness.BusyboxImage(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.t.TempDir(), "image.tar")
	if err := harness.WriteDockerArchive(path, ref, img); err != nil {
		e.t.Fatal(err)
	}
	e.berthctl("images", "import", path)
}

// runToExit starts a container, waits for it to exit and returns its status
// and its output (stdout and stderr, from its log).
func (e *env) runToExit(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (*runtimeapi.ContainerStatus, string) {
	e.t.Helper()
	st := e.waitExited(e.start(podID, pod, cfg))
	return st, logText(e.t, st.GetLogPath())
}

// startReady starts a container whose command prints "ready" once it is
// set up, and waits for that line.
func (e *env) startReady(podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	id := e.start(podID, pod, cfg)
	path := e.status(id).GetLogPath()
	testutil.Eventually(e.t, cfg.GetMetadata().GetName()+" to be ready", func() bool {
		return strings.Contains(logText(e.t, path), "ready\n")
	})
	return id
}

func (e *env) stop(id string, timeout int64) {
	e.t.Helper()
	if _, err := e.rt.StopContainer(ctx(e.t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: timeout}); err != nil {
		e.t.Fatalf("StopContainer %s: %v", id, err)
	}
}

// mustExec runs cmd, fails the test unless it exits 0 and returns its
// stdout without the trailing newline.
func (e *env) mustExec(id string, cmd ...string) string {
	e.t.Helper()
	out, stderr, code := e.exec(id, cmd...)
	if code != 0 {
		e.t.Fatalf("exec %q: exit %d, stderr %q", cmd, code, stderr)
	}
	return strings.TrimSuffix(out, "\n")
}

// statusField is a field of /proc/<pid>/status of the container's command
// (PID 1: the container needs withContainerPID) and of a process exec'd in
// it, which runs with the same user, capabilities and filters; the two must
// agree.
func (e *env) statusField(id, field string) string {
	e.t.Helper()
	init := e.procStatusField(id, "1", field)
	if exec := e.procStatusField(id, "self", field); exec != init {
		e.t.Errorf("%s: %s of the container's command is %s, of an exec %s", id, field, init, exec)
	}
	return init
}

func (e *env) procStatusField(id, pid, field string) string {
	e.t.Helper()
	for _, line := range strings.Split(e.mustExec(id, "cat", "/proc/"+pid+"/status"), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	e.t.Fatalf("no %s in /proc/%s/status of %s", field, pid, id)
	return ""
}

func (e *env) capEff(id string) uint64 {
	e.t.Helper()
	v, err := strconv.ParseUint(e.statusField(id, "CapEff"), 16, 64)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// hostCapBnd is this (root) test process's bounding set, which berthd
// inherits.
func hostCapBnd(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mask
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return 0
}

func hostHasCap(t *testing.T, bit uint) bool { return hostCapBnd(t)&(1<<bit) != 0 }

// logText is the content of a CRI log file: the lines' messages, with
// partial lines joined, each full line ending in "\n".
func logText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		// <time> <stream> <P|F> <message>
		parts := strings.SplitN(line, " ", 4)
		if len(parts) < 3 {
			continue
		}
		if len(parts) == 4 {
			b.WriteString(parts[3])
		}
		if parts[2] == "F" {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func parseEnv(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
