package server

import (
	"context"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/store"
)

// recover rebuilds the runtime's view after berthd (re)starts.
//
// Assumptions: records are written atomically, and a record gets its
// status file only once everything it describes exists; shims outlive
// berthd and record exits in files. So:
//   - complete records are loaded as they are; their live state is then
//     read from reality on every query (exit files, shim liveness), so a
//     container that exited while berthd was down reports its real exit,
//     and one whose shim died is reported lost, not running;
//   - incomplete records (a crash during RunPodSandbox or CreateContainer)
//     are undone by their IDs: runc state, mounts, network, directories;
//   - unreadable records are logged and left on disk untouched.
//
// The exits of what still runs are then watched from Run (exits.go), so
// that a container ending while nobody asks is still reported STOPPED.
func (s *Service) recover(ctx context.Context) error {
	incomplete, errs := s.store.Load()
	for _, err := range errs {
		s.log.Error("record unreadable, left as it is", "error", err)
	}
	if err := s.checkDriver(); err != nil {
		return err
	}
	for _, inc := range incomplete {
		s.log.Warn("cleaning up after interrupted creation", "kind", inc.Kind, "id", inc.ID)
		switch inc.Kind {
		case "sandbox":
			s.undoSandbox(ctx, inc.ID, inc.Dir)
		case "container":
			s.cfg.Runc.Delete(ctx, inc.ID, true)
			if err := unmountImageVolumes(inc.Dir); err != nil {
				s.log.Warn("unmount image volumes of interrupted container", "container", inc.ID, "error", err)
			}
			image.UnmountRootfs(inc.Dir)
			atomicfile.RemoveAll(inc.Dir)
		}
	}
	running := 0
	for _, c := range s.store.Containers() {
		if c.Status().State == store.ContainerCreated {
			s.recoverStarted(ctx, c)
		}
		if s.containerStatus(ctx, c).State == store.ContainerRunning {
			running++
		}
	}
	s.log.Info("runtime state recovered", "sandboxes", len(s.store.Sandboxes()), "containers", len(s.store.Containers()), "running", running, "cleaned", len(incomplete))
	return nil
}

// checkDriver refuses to start with a cgroup driver other than the one
// the recorded sandboxes were made with: their cgroups, and those of
// their containers, are named in the other driver's syntax, and neither
// their stats nor their removal would find them.
func (s *Service) checkDriver() error {
	n, example := 0, ""
	for _, sb := range s.store.Sandboxes() {
		if s.cfg.CgroupDriver.CheckParent(sb.Meta.CgroupParent) != nil {
			n++
			example = sb.Meta.ID
		}
	}
	if n == 0 {
		return nil
	}
	other := cgroup.Systemd
	if s.cfg.CgroupDriver == cgroup.Systemd {
		other = cgroup.Cgroupfs
	}
	return errdefs.FailedPrecondition("cgroup driver %s: %d pod sandboxes (%s among them) were made with the %s driver; "+
		"start berthd with --cgroup-driver=%s, or remove them first (crictl rmp -fa with that driver)", s.cfg.CgroupDriver, n, example, other, other)
}

// recoverStarted finds a container that its shim started as berthd
// stopped: StartContainer records Running only once the shim answered,
// so the record says created while runc has it running. It is recorded
// running, and its exit is then collected as any other's; a container
// the shim never got to start stays created.
func (s *Service) recoverStarted(ctx context.Context, c *store.Container) {
	st, err := s.cfg.Runc.State(ctx, c.Meta.ID)
	if err != nil || st.Status != "running" || st.Pid <= 0 {
		return
	}
	started := st.Created
	if started.IsZero() {
		started = time.Now()
	}
	if err := c.Update(func(cs *store.ContainerStatus) error {
		cs.State, cs.Pid, cs.StartedAt = store.ContainerRunning, st.Pid, started.UnixNano()
		return nil
	}); err != nil {
		s.log.Error("record a container started as berthd stopped", "container", c.Meta.ID, "error", err)
		return
	}
	s.log.Warn("container was started as berthd stopped: recovered as running", "container", c.Meta.ID, "pid", st.Pid)
}

// undoSandbox removes what a half-created sandbox may have left, found by
// the naming conventions of RunPodSandbox.
func (s *Service) undoSandbox(ctx context.Context, id, dir string) {
	s.cfg.Runc.Delete(ctx, id, true)
	socket := s.shimSocket(id)
	stopShimAt(ctx, socket)
	stateDir := s.sandboxStateDir(id)
	unmountShm(filepath.Join(stateDir, "shm"))
	meta := &store.SandboxMeta{ID: id, NetNS: filepath.Join(s.cfg.State, "netns", id)}
	if err := s.teardownNetwork(ctx, meta); err != nil {
		s.log.Warn("network teardown of interrupted sandbox", "sandbox", id, "error", err)
	}
	atomicfile.RemoveAll(stateDir)
	atomicfile.RemoveAll(dir)
}
