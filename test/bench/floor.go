package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/netns"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/test/harness"
)

// bundles are the OCI specs berth generated for one pod, reused for the
// floor so both sides start exactly the same containers.
type bundles struct {
	pause, ctr  specs.Spec
	lowerdir    string // the container's overlay lower dirs
	pauseRootfs string
}

func copyBundles(d *harness.Daemon, podID, ctrID string) (*bundles, error) {
	b := &bundles{pauseRootfs: filepath.Join(d.Root, "pause", "rootfs")}
	for path, spec := range map[string]*specs.Spec{
		filepath.Join(d.Root, "sandboxes", podID, "config.json"):  &b.pause,
		filepath.Join(d.Root, "containers", ctrID, "config.json"): &b.ctr,
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, spec); err != nil {
			return nil, err
		}
	}
	lower, err := overlayLowerdir(filepath.Join(d.Root, "containers", ctrID, "rootfs"))
	if err != nil {
		return nil, err
	}
	b.lowerdir = lower
	return b, nil
}

func overlayLowerdir(mountpoint string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 || fields[4] != mountpoint {
			continue
		}
		for _, opt := range strings.Split(fields[len(fields)-1], ",") {
			if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("no overlay mount at %s", mountpoint)
}

// floorRun times the same pod started with raw runc and libcni.
type floorRun struct {
	d                                *harness.Daemon
	b                                *bundles
	net, pause, ctr, total, teardown []time.Duration
}

// runc runs raw runc. Its stdio is /dev/null (what a detached container
// inherits), its own messages go to a log file.
func (f *floorRun) runc(args ...string) error {
	log := filepath.Join(f.d.Dir, "floor-runc.log")
	cmd := exec.Command(filepath.Join(f.d.Bin, "runc"), append([]string{"--root", filepath.Join(f.d.Dir, "floor-runc"), "--log", log}, args...)...)
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(log)
		return fmt.Errorf("runc %v: %v: %s", args, err, out)
	}
	return nil
}

func (f *floorRun) iteration(ctx context.Context, i int) error {
	id := fmt.Sprintf("floor-%d-%d", i, time.Now().UnixNano())
	dir := filepath.Join(f.d.Dir, "floor", id)
	rootfs := filepath.Join(dir, "rootfs")
	for _, p := range []string{filepath.Join(dir, "pause"), filepath.Join(dir, "ctr"), rootfs, filepath.Join(dir, "upper"), filepath.Join(dir, "work")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", f.b.lowerdir, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount floor rootfs: %w", err)
	}
	defer unix.Unmount(rootfs, unix.MNT_DETACH)
	mgr, err := network.New(network.Config{ConfDir: filepath.Join(f.d.Dir, "net.d"), BinDirs: []string{filepath.Join(f.d.Bin, "cni")}, CacheDir: filepath.Join(f.d.Dir, "floor-cni-cache")})
	if err != nil {
		return err
	}

	t0 := time.Now()
	nsPath, err := netns.New(filepath.Join(f.d.Dir, "floor-netns"), id)
	if err != nil {
		return err
	}
	att := network.Attachment{SandboxID: id, NetNS: nsPath, PodName: id, PodNamespace: "floor", PodUID: id}
	if _, err := mgr.Setup(ctx, att); err != nil {
		return err
	}
	t1 := time.Now()
	pause := f.b.pause
	pause.Root = &specs.Root{Path: f.b.pauseRootfs, Readonly: true}
	pause.Linux.CgroupsPath = "/berth-floor/" + id + "-pause"
	setNamespace(&pause, specs.NetworkNamespace, nsPath)
	if err := writeSpec(filepath.Join(dir, "pause"), &pause); err != nil {
		return err
	}
	pidFile := filepath.Join(dir, "pause.pid")
	if err := f.runc("run", "-d", "--pid-file", pidFile, "--bundle", filepath.Join(dir, "pause"), id+"-pause"); err != nil {
		return err
	}
	t2 := time.Now()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	ctr := f.b.ctr
	ctr.Root = &specs.Root{Path: rootfs}
	ctr.Linux.CgroupsPath = "/berth-floor/" + id + "-ctr"
	setNamespace(&ctr, specs.NetworkNamespace, nsPath)
	setNamespace(&ctr, specs.IPCNamespace, fmt.Sprintf("/proc/%d/ns/ipc", pid))
	setNamespace(&ctr, specs.UTSNamespace, fmt.Sprintf("/proc/%d/ns/uts", pid))
	if err := writeSpec(filepath.Join(dir, "ctr"), &ctr); err != nil {
		return err
	}
	if err := f.runc("run", "-d", "--bundle", filepath.Join(dir, "ctr"), id+"-ctr"); err != nil {
		return err
	}
	t3 := time.Now()
	f.net = append(f.net, t1.Sub(t0))
	f.pause = append(f.pause, t2.Sub(t1))
	f.ctr = append(f.ctr, t3.Sub(t2))
	f.total = append(f.total, t3.Sub(t0))

	t4 := time.Now()
	for _, c := range []string{id + "-ctr", id + "-pause"} {
		if err := f.runc("delete", "--force", c); err != nil {
			return err
		}
	}
	if err := mgr.Teardown(ctx, att); err != nil {
		return err
	}
	if err := netns.Remove(nsPath); err != nil {
		return err
	}
	f.teardown = append(f.teardown, time.Since(t4))
	unix.Rmdir("/sys/fs/cgroup/memory/berth-floor")
	return nil
}

func (f *floorRun) drop(i int) {
	f.net = append(f.net[:i], f.net[i+1:]...)
	f.pause = append(f.pause[:i], f.pause[i+1:]...)
	f.ctr = append(f.ctr[:i], f.ctr[i+1:]...)
	f.total = append(f.total[:i], f.total[i+1:]...)
}

func setNamespace(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			s.Linux.Namespaces[i].Path = path
		}
	}
}

func writeSpec(dir string, s *specs.Spec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}
