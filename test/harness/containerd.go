package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	cniplugins "github.com/berth-project/berth/cni-plugins"
)

// Containerd is Debian's containerd with a directory, socket and CNI
// network of its own: the other CRI runtime the agent must drive
// unchanged. Its sandbox image is PauseRef, imported from berth-pause.
type Containerd struct {
	Dir     string
	Socket  string
	Bridge  string
	Runtime runtimeapi.RuntimeServiceClient

	cmd    *exec.Cmd
	exited chan struct{}
	conn   *grpc.ClientConn
}

// PauseRef is the sandbox image containerd is configured with.
const PauseRef = "berth.test/pause:1"

// StartContainerd configures and starts containerd, imports the pause
// image and waits until its CRI answers.
func StartContainerd(ctx context.Context) (*Containerd, error) {
	bin, err := RepoBin()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		return nil, fmt.Errorf("containerd not installed (Debian's package; make deps installs it): %w", err)
	}
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		return nil, err
	}
	suffix := randHex(4)
	c := &Containerd{Dir: dir, Socket: filepath.Join(dir, "c.sock"), Bridge: "bc" + suffix}
	conf, err := cniplugins.Conflist(cniplugins.Options{Name: "berth-ctrd-" + suffix, Bridge: c.Bridge,
		Subnets: []string{randomSubnet()}, DataDir: filepath.Join(dir, "ipam")})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "net.d"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "net.d", cniplugins.ConflistName), conf, 0o644); err != nil {
		return nil, err
	}
	// restrict_oom_score_adj: this machine cannot lower oom_score_adj.
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      BinaryName = %[8]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc", PauseRef,
		filepath.Join(bin, "cni"), filepath.Join(dir, "net.d"), filepath.Join(bin, "runc"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.exited) }()
	if c.conn, err = grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return c, err
	}
	c.Runtime = runtimeapi.NewRuntimeServiceClient(c.conn)
	if err := awaitAnswer(ctx, "containerd", c.Socket, c.LogPath(), c.exited, func(ctx context.Context) error {
		_, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
		return err
	}); err != nil {
		return c, err
	}
	pause, err := PauseImage(filepath.Join(bin, "berth-pause"))
	if err != nil {
		return c, err
	}
	archive := filepath.Join(dir, "pause.tar")
	if err := WriteDockerArchive(archive, PauseRef, pause); err != nil {
		return c, err
	}
	return c, c.Import(ctx, archive)
}

// Import loads an image archive into the namespace the CRI uses.
func (c *Containerd) Import(ctx context.Context, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.Socket, "--namespace", "k8s.io",
		"images", "import", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", archive, err, out)
	}
	return nil
}

// Pid is containerd's process ID.
func (c *Containerd) Pid() int { return c.cmd.Process.Pid }

// ShimPids are the process IDs of the shims serving this containerd.
func (c *Containerd) ShimPids() []int {
	return pids(func(cmdline string) bool { return isShimOf(cmdline, c.Socket) })
}

func isShimOf(cmdline, socket string) bool {
	return strings.Contains(cmdline, "containerd-shim") && strings.Contains(cmdline, socket)
}

// LogPath is containerd's own log.
func (c *Containerd) LogPath() string { return filepath.Join(c.Dir, "containerd.log") }

// Cleanup removes every pod through the CRI, stops containerd and its
// leftover shims, and deletes its directory and bridge.
func (c *Containerd) Cleanup() error {
	var errs []error
	if c.Runtime != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if pods, err := c.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.GetItems() {
				c.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()})
				if _, err := c.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
					errs = append(errs, fmt.Errorf("containerd: remove pod %s: %w", p.GetId(), err))
				}
			}
		}
		cancel()
		c.conn.Close()
	}
	if c.cmd != nil {
		terminate(c.cmd, c.exited)
	}
	killProcesses(func(cmdline string) bool { return isShimOf(cmdline, c.Socket) })
	unmountBelow(c.Dir)
	if link, err := netlink.LinkByName(c.Bridge); err == nil {
		netlink.LinkDel(link)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killProcesses kills the processes whose command line matches.
func killProcesses(match func(cmdline string) bool) {
	for _, pid := range pids(match) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pids are the processes whose command line (its words joined by
// spaces) matches.
func pids(match func(cmdline string) bool) []int {
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && match(strings.ReplaceAll(string(cmdline), "\x00", " ")) {
			out = append(out, pid)
		}
	}
	return out
}

// PauseImage is an image of one static pause binary at /pause.
func PauseImage(binary string) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "pause", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Config = v1.Config{Entrypoint: []string{"/pause"}}
	return mutate.ConfigFile(img, cf)
}
