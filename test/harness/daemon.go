// Package harness runs a real berthd for end-to-end tests and benchmarks:
// temporary, uniquely named directories, bridge and subnet, so that runs
// never collide with each other or with a system berthd.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	cniplugins "github.com/berth-project/berth/cni-plugins"
	"github.com/berth-project/berth/cri/server"
)

// Daemon is one berthd started from the repository's bin/.
type Daemon struct {
	Bin    string // the repository's bin/
	Dir    string // everything of this run lives below it
	Socket string
	Root   string
	State  string
	LogDir string // pods' log directories go here
	// Manifests is the agent's static pod directory; APISocket its API.
	Manifests string
	APISocket string
	NodeName  string
	// CgroupRoot is the agent's QoS hierarchy, unique to this run.
	CgroupRoot string
	Bridge     string
	Subnet     string
	Network    string // CNI network name

	cmd     *exec.Cmd
	exited  chan struct{}
	conn    *grpc.ClientConn
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	// Env is added to berthd's environment (NOTIFY_SOCKET, …).
	Env []string

	extraArgs []string // more berthd flags, set through SetRegistryConfig
}

// RepoBin finds the repository's bin/ from this source file.
func RepoBin() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", "bin")
	for _, b := range []string{"berthd", "berth-shim", "berth-pause", "berthctl", "runc", "cni/bridge"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return "", fmt.Errorf("%s missing: run `make build` first", filepath.Join(bin, b))
		}
	}
	return filepath.Clean(bin), nil
}

// NewDaemon prepares (but does not start) a berthd with its own
// directories, CNI network, bridge and /24 subnet.
func NewDaemon() (*Daemon, error) {
	bin, err := RepoBin()
	if err != nil {
		return nil, err
	}
	// Short paths: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "bt")
	if err != nil {
		return nil, err
	}
	// As /var/lib is for an installed berthd: a pod with its own user
	// namespace needs to reach its rootfs below.
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	suffix := randHex(4)
	d := &Daemon{
		Bin:    bin,
		Dir:    dir,
		Socket: filepath.Join(dir, "b.sock"),
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		LogDir: filepath.Join(dir, "logs"),

		Manifests: filepath.Join(dir, "manifests"),
		APISocket: filepath.Join(dir, "api.sock"),
		NodeName:  "node-" + suffix,

		CgroupRoot: "berth-e2e-" + suffix + "/kubepods",
		Bridge:     "bt" + suffix,
		Network:    "berth-test-" + suffix,
		Subnet:     randomSubnet(),
	}
	conf, err := cniplugins.Conflist(cniplugins.Options{
		Name:    d.Network,
		Bridge:  d.Bridge,
		Subnets: []string{d.Subnet},
		DataDir: filepath.Join(dir, "ipam"),
	})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.confDir(), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.confDir(), cniplugins.ConflistName), conf, 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) confDir() string { return filepath.Join(d.Dir, "net.d") }

// IPAMDir is host-local's lease directory for this run's network.
func (d *Daemon) IPAMDir() string { return filepath.Join(d.Dir, "ipam", d.Network) }

// Start starts berthd and waits until it answers on its socket.
func (d *Daemon) Start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(d.Dir, "berthd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(d.Bin, "berthd"),
		"--cri-socket", d.Socket, "--root", d.Root, "--state", d.State,
		"--cni-conf-dir", d.confDir(), "--log-level", "debug",
		"--pod-manifest-path", d.Manifests, "--pod-logs-dir", d.LogDir,
		"--api-socket", d.APISocket, "--node-name", d.NodeName, "--cgroup-root", d.CgroupRoot,
		// A Kubernetes node's kubelet API on a free port: two runs and a
		// running berthd never collide on 10250.
		"--port", "0",
		// Test machines may have swap on; the refusal is unit-tested.
		"--fail-swap-on=false",
		// /healthz on 10248 is tested on a port of its own.
		"--healthz-port", "0",
		// No eviction: a test machine's disk is shared with whatever else
		// runs there. The eviction test sets its own thresholds.
		"--eviction-hard", "")
	cmd.Args = append(cmd.Args, d.extraArgs...)
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }()

	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.Images = runtimeapi.NewImageServiceClient(conn)
	return awaitAnswer(ctx, "berthd", d.Socket, d.LogPath(), d.exited, func(ctx context.Context) error {
		_, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
		return err
	})
}

// Pid is berthd's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Kill kills berthd with SIGKILL (as a crash would) and waits for it.
func (d *Daemon) Kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.conn.Close()
	d.cmd = nil
}

// Stop asks berthd to exit with SIGTERM and waits for it.
func (d *Daemon) Stop() {
	if d.cmd == nil {
		return
	}
	terminate(d.cmd, d.exited)
	d.conn.Close()
	d.cmd = nil
}

// terminate asks a process to exit with SIGTERM, kills it after 30 s, and
// waits until it is gone (exited is closed by its waiter).
func terminate(cmd *exec.Cmd, exited <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Cleanup removes every pod through the CRI, stops berthd and deletes the
// run's directories and bridge. It is meant for defers: it reports what it
// could not clean instead of stopping half-way.
func (d *Daemon) Cleanup() error {
	var errs []error
	if d.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		// The agent would recreate its pods: take its manifests away first
		// and let it tear them down.
		if entries, _ := os.ReadDir(d.Manifests); len(entries) > 0 {
			for _, e := range entries {
				os.RemoveAll(filepath.Join(d.Manifests, e.Name()))
			}
			if err := d.waitNoAgentPods(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.GetItems() {
				if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
					errs = append(errs, fmt.Errorf("remove pod %s: %w", p.GetId(), err))
				}
			}
		}
		cancel()
		d.Stop()
	}
	// Whatever a failed test left: shims, mounts below the run's dir.
	killShims(d.State)
	unmountBelow(d.Dir)
	if err := removeCgroupTree(strings.SplitN(d.CgroupRoot, "/", 2)[0]); err != nil {
		errs = append(errs, err)
	}
	if link, err := netlink.LinkByName(d.Bridge); err == nil {
		netlink.LinkDel(link)
	}
	if err := removeRules(d.Network); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// awaitAnswer polls ask (for up to 30 s) until the daemon answers on its
// socket, failing early if the process exits.
func awaitAnswer(ctx context.Context, name, socket, log string, exited <-chan struct{}, ask func(context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ask(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start; see %s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s: %v", name, socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeCgroupTree removes the cgroup name (and what is below it) from
// every hierarchy, deepest first; cgroup directories go with rmdir. What
// still runs there (containers of a run that failed half-way, whose shims
// are gone) is killed first.
func removeCgroupTree(name string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if _, err := os.Stat("/sys/fs/cgroup/" + name); err == nil {
		roots = append(roots, "/sys/fs/cgroup/"+name)
	}
	killed := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pids := cgroupProcs(roots)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		killed = true
	}
	var errs []error
	if killed {
		errs = append(errs, fmt.Errorf("processes were left in cgroup %s (killed)", name))
	}
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupProcs lists the processes in the cgroup trees below roots.
func cgroupProcs(roots []string) []int {
	var pids []int
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// waitNoAgentPods waits until the agent has removed all its sandboxes.
func (d *Daemon) waitNoAgentPods(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"berth.io/managed": "true"}},
		})
		if err == nil && len(pods.GetItems()) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent pods still present after their manifests were removed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogPath is berthd's own log.
func (d *Daemon) LogPath() string { return filepath.Join(d.Dir, "berthd.log") }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomSubnet picks a 10.x.y.0/24 that no host interface uses.
func randomSubnet() string {
	for {
		x, _ := rand.Int(rand.Reader, big.NewInt(200))
		y, _ := rand.Int(rand.Reader, big.NewInt(256))
		s := fmt.Sprintf("10.%d.%d.0/24", x.Int64()+50, y.Int64())
		if !subnetInUse(s) {
			return s
		}
	}
}

// Import has berthd import an image archive, as `berthctl images import`.
func (d *Daemon) Import(ctx context.Context, archive string) error {
	return d.conn.Invoke(ctx, server.ImportMethod, wrapperspb.String(archive), &runtimeapi.ListImagesResponse{})
}
