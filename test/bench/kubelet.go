package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// kubeletNode is the anchor berth is measured against: Debian's
// containerd (harness.Containerd: the same runc, CNI plugins and network
// shape as berth) and a real kubelet in standalone mode, built by
// test/kube/build.sh kubelet, running static pods from a directory, with
// a cgroup root of its own.
type kubeletNode struct {
	*harness.Containerd
	manifests  string
	cgroupDirs []string
	kubelet    *exec.Cmd
}

// startKubeletNode starts containerd, imports the bench's busybox and
// starts kubelet. A missing containerd or kubelet is an error saying which.
func startKubeletNode(ctx context.Context) (*kubeletNode, error) {
	build := exec.Command("bash", "test/kube/build.sh", "kubelet")
	var stderr bytes.Buffer
	build.Stderr = &stderr
	out, err := build.Output()
	if err != nil {
		return nil, fmt.Errorf("build kubelet (test/kube/build.sh kubelet): %w: %s", err, testutil.Tail(stderr.String(), 5))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kubelet := filepath.Join(lines[len(lines)-1], "kubelet")
	c, err := harness.StartContainerd(ctx)
	if err != nil {
		if c != nil {
			c.Cleanup()
		}
		return nil, err
	}
	k := &kubeletNode{Containerd: c, manifests: filepath.Join(c.Dir, "manifests")}
	ok := false
	defer func() {
		if !ok {
			k.stop()
		}
	}()
	bb, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(c.Dir, "busybox.tar")
	if err := harness.WriteDockerArchive(archive, image, bb); err != nil {
		return nil, err
	}
	if err := c.Import(ctx, archive); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(k.manifests, 0o755); err != nil {
		return nil, err
	}
	cgroupRoot := "berth-bench-kubelet-" + filepath.Base(c.Dir)
	if err := k.makeCgroupRoot(cgroupRoot); err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %[1]s
containerRuntimeEndpoint: unix://%[2]s
cgroupDriver: cgroupfs
cgroupRoot: /%[3]s
# The machines here are cgroup v1, may have swap, and are shared.
failCgroupV1: false
failSwapOn: false
enableServer: false
readOnlyPort: 0
healthzPort: 0
podLogsDir: %[4]s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
`, k.manifests, c.Socket, cgroupRoot, filepath.Join(c.Dir, "pod-logs"))
	if err := os.WriteFile(filepath.Join(c.Dir, "kubelet.yaml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(k.logPath())
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// --node-ip (not a loopback one, which it refuses): without it
	// kubelet resolves its node name through DNS in every pod's
	// admission, which here has no DNS to ask.
	ip, err := hostIP()
	if err != nil {
		return nil, err
	}
	k.kubelet = exec.Command(kubelet, "--config", filepath.Join(c.Dir, "kubelet.yaml"), "--root-dir", filepath.Join(c.Dir, "kubelet"),
		"--hostname-override", "bench-kubelet", "--node-ip", ip)
	k.kubelet.Stdout, k.kubelet.Stderr = logf, logf
	k.kubelet.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.kubelet.Start(); err != nil {
		return nil, fmt.Errorf("start kubelet: %w", err)
	}
	ok = true
	return k, nil
}

// hostIP is the machine's IPv4 address on its default route (a UDP
// socket's local address once connected: nothing is sent), or else its
// first global one.
func hostIP() (string, error) {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.IsGlobalUnicast() {
			return a.IP.String(), nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("kubelet's --node-ip: the machine has no global IPv4 address")
}

func (k *kubeletNode) logPath() string { return filepath.Join(k.Dir, "kubelet.log") }

// makeCgroupRoot makes kubelet's cgroup root, which it wants to exist,
// in every hierarchy.
func (k *kubeletNode) makeCgroupRoot(name string) error {
	roots := []string{"/sys/fs/cgroup"}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		entries, err := os.ReadDir("/sys/fs/cgroup")
		if err != nil {
			return err
		}
		roots = nil
		for _, e := range entries {
			if e.IsDir() { // not the symlinks to co-mounted ones
				roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
			}
		}
	}
	for _, r := range roots {
		d := filepath.Join(r, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("kubelet's cgroup root: %w", err)
		}
		k.cgroupDirs = append(k.cgroupDirs, d)
	}
	return nil
}

// stop stops kubelet, then containerd with every pod (harness), and
// removes kubelet's cgroups.
func (k *kubeletNode) stop() {
	if k.kubelet != nil {
		k.kubelet.Process.Signal(syscall.SIGTERM)
		k.kubelet.Wait()
	}
	errs := []error{k.Cleanup()}
	for _, d := range k.cgroupDirs {
		errs = append(errs, removeCgroupTree(d))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "bench: kubelet node cleanup:", err)
	}
}

// removeCgroupTree removes a cgroup directory and those below it, which
// rmdir takes leaves first.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
