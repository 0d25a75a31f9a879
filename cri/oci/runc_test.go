package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func requiresRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containers with runc")
	}
}

// runcTool drives this module's runc (bin/runc, built by `make build`) on a
// private state directory.
type runcTool struct {
	bin, root string
}

func newRunc(t *testing.T) runcTool {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "runc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("runc not built at %s: run `make build`", bin)
	}
	return runcTool{bin: bin, root: t.TempDir()}
}

func (r runcTool) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
}

// writeBundle stores spec as a bundle's config.json.
func writeBundle(t *testing.T, spec *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ownOOMScoreAdj is the floor this process may set.
func ownOOMScoreAdj(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startPause builds berth-pause, runs a sandbox from SandboxSpec detached
// and returns its PID.
func startPause(ctx context.Context, t *testing.T, r runcTool, sandbox *runtimeapi.PodSandboxConfig) int {
	t.Helper()
	rootfs := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o",
		filepath.Join(rootfs, "pause"), "../../cmd/berth-pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build berth-pause: %v\n%s", err, out)
	}
	id := fmt.Sprintf("berth-oci-test-%d-pause", os.Getpid())
	spec, err := SandboxSpec(SandboxInput{
		ID: id, Config: sandbox, Rootfs: rootfs, CgroupsPath: "/" + id,
		ShmPath: t.TempDir(), MinOOMScoreAdj: ownOOMScoreAdj(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The detached pause keeps its stdio open: give it a file, not a pipe
	// that Wait would wait on.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "pause.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	run := r.cmd(ctx, "run", "--detach", "--bundle", writeBundle(t, spec), id)
	run.Stdout, run.Stderr = logFile, logFile
	if err := run.Run(); err != nil {
		out, _ := os.ReadFile(logFile.Name())
		t.Fatalf("runc run pause: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := r.cmd(ctx, "delete", "--force", id).CombinedOutput(); err != nil {
			t.Errorf("runc delete %s: %v\n%s", id, err, out)
		}
	})
	out, err := r.cmd(ctx, "state", id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		t.Fatalf("runc state %s: %v", out, err)
	}
	return st.Pid
}

// TestRuncRunsSpecs runs a pause sandbox and containers joining it with the
// real runc, and checks what a user would see inside: who they are, whom
// they share a PID namespace with, and what the seccomp profile refuses.
func TestRuncRunsSpecs(t *testing.T) {
	requiresRoot(t)
	r := newRunc(t)
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs a static busybox at /usr/bin/busybox (Debian busybox-static)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sandbox := &runtimeapi.PodSandboxConfig{
		Hostname: "pod-a",
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: podNS(node, pod, pod),
			Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		}},
	}
	pausePID := startPause(ctx, t, r, sandbox)

	rootfs := writeRootfs(t, testPasswd, testGroup)
	for _, dir := range []string{"bin", "mnt"} {
		if err := os.MkdirAll(filepath.Join(rootfs, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/usr/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	const script = `bb=/bin/busybox
echo uid=$($bb id -u) gid=$($bb id -g) pid1=$($bb cat /proc/1/cmdline)
$bb unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied
$bb mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied`

	run := func(t *testing.T, name string, sc *runtimeapi.LinuxContainerSecurityContext) string {
		t.Helper()
		sc.NamespaceOptions = podNS(node, pod, pod)
		sandbox := sandbox
		if sc.Privileged {
			// Only ContainerSpec's check reads the flag; the running
			// pause stays confined.
			sandbox = &runtimeapi.PodSandboxConfig{Hostname: "pod-a", Linux: &runtimeapi.LinuxPodSandboxConfig{
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}}
		}
		id := fmt.Sprintf("berth-oci-test-%d-%s", os.Getpid(), name)
		spec, err := ContainerSpec(ContainerInput{
			ID: id,
			Config: &runtimeapi.ContainerConfig{
				Command: []string{"/bin/busybox", "sh", "-c", script},
				Linux:   &runtimeapi.LinuxContainerConfig{SecurityContext: sc},
			},
			Sandbox: sandbox, Image: v1.Config{User: "alice"}, Rootfs: rootfs,
			SandboxPID: pausePID, CgroupsPath: "/" + id, MinOOMScoreAdj: ownOOMScoreAdj(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		var out, stderr bytes.Buffer
		cmd := r.cmd(ctx, "run", "--bundle", writeBundle(t, spec), id)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("runc run %s: %v\n%s%s", id, err, out.String(), stderr.String())
		}
		return out.String()
	}
	runtimeDefault := func() *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	root := &runtimeapi.Int64Value{Value: 0}

	unconfined := run(t, "unconfined", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: root})
	t.Logf("unconfined: %s", unconfined)
	if !strings.Contains(unconfined, "unshare=ok") {
		t.Skipf("this kernel refuses user namespaces even unconfined: %s", unconfined)
	}

	out := run(t, "alice", &runtimeapi.LinuxContainerSecurityContext{Seccomp: runtimeDefault()})
	if want := "uid=1000 gid=1000 pid1=/pause"; !strings.Contains(out, want) {
		t.Errorf("image user in the pod's PID namespace: got %q, want %q", out, want)
	}
	if !strings.Contains(out, "unshare=denied") {
		t.Errorf("RuntimeDefault let unshare through: %q", out)
	}

	out = run(t, "rootdefault", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: root, Seccomp: runtimeDefault()})
	if !strings.Contains(out, "unshare=denied") || !strings.Contains(out, "mount=denied") {
		t.Errorf("RuntimeDefault as root: %q, want unshare and mount denied", out)
	}

	out = run(t, "privileged", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: root, Privileged: true,
		Seccomp: runtimeDefault()})
	if !strings.Contains(out, "unshare=ok") || !strings.Contains(out, "mount=ok") {
		t.Errorf("privileged: %q, want unshare and mount allowed", out)
	}

	if !hostBoundingSet()["CAP_SYS_ADMIN"] {
		return
	}
	out = run(t, "sysadmin", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: root, Seccomp: runtimeDefault(),
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}})
	if !strings.Contains(out, "unshare=ok") || !strings.Contains(out, "mount=ok") {
		t.Errorf("RuntimeDefault with CAP_SYS_ADMIN: %q, want unshare and mount allowed", out)
	}
}
