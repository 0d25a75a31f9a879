package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/enter"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/cri/nri"
	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
	"github.com/berth-project/berth/cri/streaming"
)

// PauseImage names berth's built-in pause image in the image store.
const PauseImage = "berth.local/pause:builtin"

// Version is berth's version as reported by the Version RPC.
var Version = "0.1.0-dev"

// images is what the runtime needs of the image store.
type images interface {
	Get(ref string) (image.Image, error)
	List() []image.Image
	Remove(ref string, inUse map[string]bool) error
	Prune(inUse map[string]bool) error
	MountRootfs(imageID, dir string, idmap *image.IDMap) (string, error)
	MountReadOnly(imageID, dir string) (string, error)
	FsInfo() (mountpoint string, usedBytes, inodesUsed uint64, err error)
	Import(path string) ([]image.Image, error)
	Pull(ctx context.Context, ref string, auth *image.Auth) (image.Image, error)
	ConfigFile(ref string) ([]byte, error)
	Export(w io.Writer, format string, refs ...string) error
}

// podNetwork is what the runtime needs of CNI.
type podNetwork interface {
	Ready() error
	Setup(ctx context.Context, a network.Attachment) (network.Result, error)
	Teardown(ctx context.Context, a network.Attachment) error
	UpdatePodCIDR(cidr string) error
}

// Config is the runtime's configuration. Paths must be absolute.
type Config struct {
	Root        string     // persistent records (--root)
	State       string     // runtime state: shim sockets, netns, runc root (--state)
	ShimBinary  string     // berth-shim
	PauseBinary string     // berth-pause, copied into the sandbox rootfs
	Runc        *runc.Runc // runc binary and root
	// Exec runs execs without runc where it can; nil: always runc.
	Exec         *enter.Helper
	CgroupDriver cgroup.Driver // cgroupfs or systemd
	// ShimScopes moves each shim into a systemd scope of its own, out of
	// berthd's unit (where systemd runs the host).
	ShimScopes bool
	// MinOOMScoreAdj is the lowest oom_score_adj berth may give a process.
	MinOOMScoreAdj int
	// CNIConfDir is where the pod network's config is read from; it is
	// only reported (Status, verbose).
	CNIConfDir string
	// Streaming is where exec, attach and port-forward sessions are
	// served; without a listener those RPCs answer Unavailable.
	Streaming streaming.Config
	// NRI connects plugins to the lifecycle; no socket, no NRI.
	NRI nri.Config
	// LogMaxSize (bytes; 0: never) and LogMaxFiles rotate containers'
	// logs, in their shim, as kubelet's containerLogMaxSize and
	// containerLogMaxFiles.
	LogMaxSize  int64
	LogMaxFiles int
}

// Service implements the CRI RuntimeService and ImageService.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg     Config
	store   *store.Store
	images  images
	network podNetwork
	log     *slog.Logger
	// logDrops are the containers' dropped log records (logdrops.go).
	logDrops logDrops
	pause    string // sandbox rootfs holding /pause
	ops      opLocks
	cgroups  *cgroup.Ledger    // parent cgroups berth created
	events   *broadcaster      // container events, to GetContainerEvents streams
	exits    *exitWatchers     // one goroutine per running process, see exits.go
	streams  *streaming.Server // exec/attach/port-forward sessions; nil if not configured
	usage    usageReader       // cgroup, network and writable layer usage, for the stats verbs
	nri      *nri.NRI          // nil without NRI
	// rootLock is held for the life of the process: two daemons on one
	// root would corrupt each other's records.
	rootLock *os.File
}

// Deps are the parts the service is built from.
type Deps struct {
	Images  images
	Network podNetwork
	Log     *slog.Logger
}

// New prepares the service's directories, loads its records and recovers
// from whatever a crash left behind. It starts no goroutines: Run watches
// the recovered containers and must run for as long as the service serves.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if err := cfg.CgroupDriver.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, cfg.State, filepath.Join(cfg.State, "shims"), filepath.Join(cfg.State, "netns"), filepath.Join(cfg.State, "sandboxes"), cfg.Runc.Root} {
		if err := mkdirTraversable(d); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", d, err)
		}
	}
	lock, err := lockRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	st, err := store.New(cfg.Root)
	if err != nil {
		return nil, err
	}
	cgroups, err := cgroup.OpenLedger(filepath.Join(cfg.Root, "cgroups.json"))
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: st, images: deps.Images, network: deps.Network, log: deps.Log, rootLock: lock, cgroups: cgroups,
		events: newBroadcaster(eventBuffer), exits: newExitWatchers()}
	s.usage = stats.New(stats.Config{})
	if s.pause, err = preparePauseRootfs(cfg.Root, cfg.PauseBinary); err != nil {
		return nil, err
	}
	if cfg.Streaming.Listener != nil {
		if s.streams, err = streaming.New(cfg.Streaming, streamRuntime{s}); err != nil {
			return nil, err
		}
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	if s.nri, err = nri.New(cfg.NRI, s.nriSnapshot, deps.Log.With("component", "nri")); err != nil {
		return nil, err
	}
	if err := s.nri.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// lockRoot takes an exclusive lock on root/berthd.lock, or fails naming
// the directory if another berthd holds it.
func lockRoot(root string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(root, "berthd.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", root, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, errdefs.FailedPrecondition("another berthd is already using --root %s", root)
	}
	return f, nil
}

// preparePauseRootfs puts the pause binary into a read-only rootfs shared by
// all sandboxes, with the mount points runc needs.
func preparePauseRootfs(root, pauseBinary string) (string, error) {
	rootfs := filepath.Join(root, "pause", "rootfs")
	for _, d := range []string{"proc", "dev", "sys", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return "", fmt.Errorf("pause rootfs: %w", err)
		}
	}
	// runc makes missing mount points as the pod's root, which in a user
	// namespace of its own may not write here.
	for _, f := range []string{"etc/resolv.conf", "etc/hosts", "etc/hostname"} {
		fd, err := os.OpenFile(filepath.Join(rootfs, f), os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return "", fmt.Errorf("pause rootfs: %w", err)
		}
		fd.Close()
	}
	data, err := os.ReadFile(pauseBinary)
	if err != nil {
		return "", fmt.Errorf("pause binary: %w", err)
	}
	target := filepath.Join(rootfs, "pause")
	if old, err := os.ReadFile(target); err == nil && string(old) == string(data) {
		return rootfs, nil
	}
	tmp := target + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	return rootfs, nil
}

// mkdirTraversable makes dir (and its parents) with mode 0711, also when it
// exists: the root of a pod with its own user namespace is an unprivileged
// host user, and runc, acting as it, must reach the rootfs and the mount
// sources below these directories. Their entries stay unlisted.
func mkdirTraversable(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	return os.Chmod(dir, 0o711)
}

// newID returns a random 64-hex-digit ID, as containerd's.
func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanupContext is for work in defers and rollbacks: it must run even
// when the request's own context is already cancelled.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// undo collects rollback steps and runs them in reverse unless disarmed.
type undo struct {
	steps []func(ctx context.Context)
}

func (u *undo) add(f func(ctx context.Context)) { u.steps = append(u.steps, f) }

// run runs the rollback steps; call it deferred with the named error.
func (u *undo) run(err error) {
	if err == nil || len(u.steps) == 0 {
		return
	}
	ctx, cancel := cleanupContext()
	defer cancel()
	for i := len(u.steps) - 1; i >= 0; i-- {
		u.steps[i](ctx)
	}
}
