// Package vm boots a real systemd on the unified cgroup v2 hierarchy (a
// Debian 12 under qemu's software emulation, built once by image.sh) and
// runs berth there as users run it: installed with its unit, under
// systemd. The development and CI machines are cgroup v1 without systemd
// as PID 1; this lane is where berth meets the hosts people have.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// guest is one boot of the VM: a share (/mnt/share inside) with what the
// test hands in and what the guest writes back.
type guest struct {
	t     *testing.T
	share string
	disk  string // the guest's root filesystem, once booted
}

// newGuest prepares a share with the repository's unit and default
// network, the test image, and script as guest.sh.
func newGuest(t *testing.T, script string) *guest {
	t.Helper()
	g := &guest{t: t, share: t.TempDir()}
	// BERTH_VM_SHARE keeps each test's share (what went in, the guest's
	// logs and results) below it, for a look after the run.
	if dir := os.Getenv("BERTH_VM_SHARE"); dir != "" {
		g.share = filepath.Join(dir, t.Name())
		if err := os.RemoveAll(g.share); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(g.share, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{
		filepath.Join(repo, "systemd", "berth.service"):         "berth.service",
		filepath.Join(repo, "cni-plugins", "10-berth.conflist"): "10-berth.conflist",
		filepath.Join(repo, "test", "vm", script):               "guest.sh",
		filepath.Join(repo, "test", "vm", "install.sh"):         "install.sh",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(g.share, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteDockerArchive(filepath.Join(g.share, "busybox.tar"), "berth.test/busybox:1", img); err != nil {
		t.Fatal(err)
	}
	return g
}

// write adds a file to the share.
func (g *guest) write(name, content string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.share, name), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// boot runs the VM until the guest powers off and returns its results,
// the key=value lines guest.sh wrote. On failure the console, the guest's
// output and berthd's journal are logged.
func (g *guest) boot() map[string]string {
	t := g.t
	t.Helper()
	out, err := exec.Command("bash", "image.sh").Output()
	if err != nil {
		t.Fatalf("image.sh: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	image := lines[len(lines)-1]
	bin, err := harness.RepoBin()
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "root.img")
	g.disk = disk
	if b, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", filepath.Join(image, "root"), disk, "3G").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 -d: %v\n%s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	console := filepath.Join(g.share, "console.log")
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "2048", "-smp", "2",
		"-nographic", "-no-reboot", "-kernel", filepath.Join(image, "vmlinuz"), "-initrd", filepath.Join(image, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 quiet",
		"-drive", "file="+disk+",format=raw,if=virtio",
		"-virtfs", "local,path="+g.share+",mount_tag=share,security_model=none",
		"-virtfs", "local,path="+bin+",mount_tag=bin,security_model=none,readonly=on",
		"-nic", "none", "-serial", "file:"+console, "-monitor", "none", "-display", "none")
	began := time.Now()
	runErr := cmd.Run()
	t.Logf("VM ran %s", time.Since(began).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("BERTH_VM_LOGS") != "" {
			for _, f := range []string{"guest.log", "journal.txt", "console.log"} {
				data, _ := os.ReadFile(filepath.Join(g.share, f))
				t.Logf("%s:\n%s", f, testutil.Tail(string(data), 80))
			}
		}
	})
	if runErr != nil {
		t.Fatalf("qemu: %v", runErr)
	}
	res := map[string]string{}
	data, err := os.ReadFile(filepath.Join(g.share, "result"))
	if err != nil {
		t.Fatalf("the guest wrote no result: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			res[k] = v
		}
	}
	return res
}

// want checks results against expectations, naming each that differs.
func want(t *testing.T, res map[string]string, expect map[string]string) {
	t.Helper()
	for k, v := range expect {
		if res[k] != v {
			t.Errorf("%s = %q, want %q", k, res[k], v)
		}
	}
}

func skipUnlessVM(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the VM lane boots a VM under emulation: not in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the VM lane needs root")
	}
}

func fmtPod(name, command string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sh", "-c", %q]
`, name, command)
}

// readDisk reads a file of the guest's root filesystem after it ran.
func (g *guest) readDisk(path string) string {
	g.t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, g.disk).Output()
	if err != nil {
		g.t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}
