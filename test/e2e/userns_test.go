package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pods with their own user namespace (kubelet's hostUsers: false): the
// pod's root is an unprivileged host user, yet owns its image's files.

// usernsHostID is where the test pods' IDs start on the host: far from any
// real user, and not a multiple of 65536 so that it cannot pass by luck.
const usernsHostID = 3_000_000 + 4242

func withUserNamespace(hostID, length uint32) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) {
		m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: length}}
		c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{
			Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m,
		}
	}
}

func TestUserNamespacePod(t *testing.T) {
	e := newEnv(t)
	resp, err := e.rt.Status(ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range resp.GetRuntimeHandlers() {
		if !h.GetFeatures().GetUserNamespaces() {
			t.Errorf("runtime handler %q does not advertise user namespaces", h.GetName())
		}
	}

	pod := e.podConfig("userns", withUserNamespace(usernsHostID, 65536))
	podID := e.runPod(pod)
	defer e.removePod(podID)

	// Inside: mapped as asked, root owns the image's files, and the
	// writable layer takes new files.
	script := "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u:%g / /bin/busybox; " +
		"mkdir /made && touch /made/file && stat -c %u:%g /made/file; touch /etc/hosts && echo hosts-ok"
	st, out := e.runToExit(podID, pod, containerConfig("inside", []string{"sh", "-c", script}))
	want := fmt.Sprintf("0 %d 65536\n0 %d 65536\n0\n0:0\n0:0\n0:0\nhosts-ok\n", usernsHostID, usernsHostID)
	if got := squeezeSpaces(out); st.GetExitCode() != 0 || got != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", st.GetExitCode(), got, want)
	}

	// Outside: the process runs as the mapped host user, and exec joins
	// the same namespace.
	id := e.start(podID, pod, containerConfig("sleeper", []string{"sleep", "3600"}))
	pid, _ := e.verboseInfo(id)["pid"].(float64)
	if uid := hostUID(t, int(pid)); uid != usernsHostID {
		t.Errorf("container process runs as host uid %d, want %d", uid, usernsHostID)
	}
	if out, _, code := e.exec(id, "sh", "-c", "id -u; cat /proc/self/uid_map"); code != 0 ||
		squeezeSpaces(out) != fmt.Sprintf("0\n0 %d 65536\n", usernsHostID) {
		t.Errorf("exec: exit %d, output %q", code, out)
	}

	// A container cannot leave its pod's user namespace.
	cfg := containerConfig("escape", []string{"true"})
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
	}
	_, err = e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	wantCode(t, "container with the node's user namespace", err, codes.InvalidArgument, "userns_options")
}

func TestUserNamespaceRefused(t *testing.T) {
	e := newEnv(t)
	mapping := func(containerID, hostID, length uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: containerID, HostId: hostID, Length: length}}
	}
	for _, tc := range []struct {
		name string
		opts *runtimeapi.UserNamespace
		want string
	}{
		{"two-mappings", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: append(mapping(0, usernsHostID, 10), mapping(10, usernsHostID+100, 10)...),
			Gids: mapping(0, usernsHostID, 65536)}, "userns_options.uids"},
		{"root-unmapped", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: mapping(1, usernsHostID, 65536), Gids: mapping(1, usernsHostID, 65536)}, "container ID 0"},
		{"container-mode", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, "CONTAINER"},
		{"target-mode", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}, "TARGET"},
	} {
		pod := e.podConfig(tc.name)
		pod.Linux.SecurityContext.NamespaceOptions.UsernsOptions = tc.opts
		_, err := e.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: pod})
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.want)
	}
	// A --root below a directory the pod's root cannot search is named
	// rather than failing inside runc.
	if err := os.Chmod(e.d.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := e.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{
		Config: e.podConfig("unsearchable", withUserNamespace(usernsHostID, 65536))})
	wantCode(t, "0700 directory above --root", err, codes.FailedPrecondition, e.d.Dir)
	if err := os.Chmod(e.d.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// Nothing was left behind by the refusals.
	resp, err := e.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetItems()); n != 0 {
		t.Errorf("%d sandboxes after refused requests", n)
	}
}

// hostUID is the real uid of a process as the host sees it.
func hostUID(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return -1
}

// squeezeSpaces trims each line and collapses runs of blanks, as the
// kernel pads /proc/self/uid_map.
func squeezeSpaces(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// ownUsersManifest is a static pod with hostUsers: false, an emptyDir and
// a hostPath volume.
func ownUsersManifest(name, hostDir string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: host, hostPath: {path: %s, type: DirectoryOrCreate}}
`, name, busybox, hostDir)
}

// Static pods with hostUsers: false: each gets a block of 65536 host IDs of
// its own, above the host's, kept across a restart of berthd; its image and
// its volumes belong to its root, and what it writes to a volume belongs
// to the volume's root on disk.
func TestStaticPodOwnUsers(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	firstID := func(name string) (id string, first int) {
		t.Helper()
		p := e.waitPod(name, "running", running)
		id = strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://")
		pid, _ := e.verboseInfo(id)["pid"].(float64)
		first = hostUID(t, int(pid))
		if first < 65536 || first%65536 != 0 {
			t.Errorf("pod %s runs as host uid %d, want a multiple of 65536 above the host's IDs", name, first)
		}
		return id, first
	}
	e.writeManifest("a.yaml", ownUsersManifest("a", filepath.Join(host, "a")))
	e.writeManifest("b.yaml", ownUsersManifest("b", filepath.Join(host, "b")))
	idA, a := firstID("a")
	_, b := firstID("b")
	if a == b {
		t.Errorf("pods a and b share host IDs from %d", a)
	}
	out, _, code := e.exec(idA, "sh", "-c",
		"cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g / /scratch /host; "+
			"touch /scratch/f /host/f && stat -c %u:%g /host/f")
	want := fmt.Sprintf("0 %d 65536\n0 %d 65536\n0:0\n0:0\n0:0\n0:0\n", a, a)
	if got := squeezeSpaces(out); code != 0 || got != want {
		t.Errorf("inside pod a: exit %d, output:\n%s\nwant:\n%s", code, got, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(host, "a", "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the file pod a's root wrote to its hostPath volume is %d:%d on disk, want 0:0 (an idmapped mount)", st.Uid, st.Gid)
	}

	// berthd dies; restarted, it knows a's and b's blocks and gives a new
	// pod another one.
	e.d.Kill()
	if err := e.d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
	e.writeManifest("c.yaml", ownUsersManifest("c", filepath.Join(host, "c")))
	_, c := firstID("c")
	if c == a || c == b {
		t.Errorf("pod c, made after berthd restarted, got host IDs from %d, which a (%d) or b (%d) holds", c, a, b)
	}
	if _, again := firstID("a"); again != a {
		t.Errorf("pod a runs as host uid %d after berthd restarted, was %d", again, a)
	}
}
