package server

import (
	"context"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// Exits are noticed without polling: while a container (or a sandbox's
// pause process) runs, one goroutine blocks in the shim's Wait for it, one
// idle unix connection each. When Wait returns (the process exited, or
// the shim died), the record is read again, which applies the exit file
// the shim wrote or marks the container lost with its shim, and the
// STOPPED event goes out. The watcher is the only publisher of STOPPED for
// a process it watches; whoever stops a process settles its watcher
// before going on, so STOPPED is out before that call returns and always
// precedes DELETED.

// waitRetryMax bounds the back-off between Wait attempts that failed while
// the process still seems to run (a shim that could not be reached for a
// moment).
const waitRetryMax = time.Minute

// Run starts watching the processes recovered by New (and the containers'
// dropped log records) and blocks until ctx ends; then it ends every
// event stream and stops the watchers. Stopping
// the watchers stops nothing else: containers and shims run on.
func (s *Service) Run(ctx context.Context) error {
	s.watchRecovered()
	go s.watchLogDrops(ctx)
	<-ctx.Done()
	s.nri.Stop()
	s.events.close(errdefs.Unavailable("berthd is shutting down"))
	s.exits.stopAll()
	return nil
}

// watchRecovered starts the watchers of the sandboxes and containers that
// ran when berthd started. Each is checked under its op lock, so a
// concurrent stop or remove either comes first (nothing to watch) or
// finds the watcher to settle.
func (s *Service) watchRecovered() {
	for _, sb := range s.store.Sandboxes() {
		unlock := s.ops.lock(sandboxKey(sb.Meta.ID))
		if _, err := s.store.Sandbox(sb.Meta.ID); err == nil && sb.Status().State == store.SandboxReady {
			s.watchSandbox(sb)
		}
		unlock()
	}
	for _, c := range s.store.Containers() {
		unlock := s.ops.lock(containerKey(c.Meta.ID))
		if _, err := s.store.Container(c.Meta.ID); err == nil && c.Status().State == store.ContainerRunning {
			s.watchContainer(c)
		}
		unlock()
	}
}

// watchContainer starts the exit watcher of a running container; call it
// under the container's op lock, after STARTED was published.
func (s *Service) watchContainer(c *store.Container) {
	id := c.Meta.ID
	socket := s.shimSocket(c.Meta.SandboxID)
	s.exits.start(id, func(ctx context.Context) {
		s.awaitExit(ctx, id, socket, func() bool {
			cctx, cancel := cleanupContext()
			defer cancel()
			if s.containerStatus(cctx, c).State == store.ContainerRunning {
				return false
			}
			s.emitContainer(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
			return true
		})
	})
}

// watchSandbox starts the exit watcher of a ready sandbox's pause process;
// call it under the sandbox's op lock, after STARTED was published.
func (s *Service) watchSandbox(sb *store.Sandbox) {
	id := sb.Meta.ID
	s.exits.start(id, func(ctx context.Context) {
		s.awaitExit(ctx, id, s.shimSocket(id), func() bool {
			st := sb.Status() // turns NotReady once the pause process or its shim is gone
			if st.State == store.SandboxReady {
				return false
			}
			if !st.Shim.Alive() && (st.Pid != 0 || !st.NetworkTornDown) {
				// The shim was lost (killed), not stopped: nothing will
				// report the pod's processes again. Stop the sandbox at
				// once, as a StopPodSandbox would (from another goroutine:
				// the stop settles this watcher), so that its pause
				// process, netns, shm mount and IP lease are not left
				// behind until the pod is removed.
				go s.stopLostSandbox(sb)
				return true
			}
			s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, sb)
			return true
		})
	})
}

// stopLostSandbox stops a sandbox whose shim died, recording why.
func (s *Service) stopLostSandbox(sb *store.Sandbox) {
	defer s.ops.lock(sandboxKey(sb.Meta.ID))()
	if _, err := s.store.Sandbox(sb.Meta.ID); err != nil {
		return // removed meanwhile
	}
	if st := sb.Status(); st.Pid == 0 && st.NetworkTornDown {
		// A StopPodSandbox got there first (its shim had just been
		// stopped when the watcher looked): the event is still due.
		s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, sb)
		return
	}
	s.log.Warn("sandbox lost its shim: stopping what it ran and releasing its network", "sandbox", sb.Meta.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.stopSandbox(ctx, sb); err != nil {
		s.log.Error("stop sandbox that lost its shim", "sandbox", sb.Meta.ID, "error", err)
		return
	}
	s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, sb)
}

// awaitExit waits in the shim until process id exits, then asks stopped
// whether the record agrees (stopped publishes the event when it does).
// It returns when stopped says so or ctx ends, checking once more after
// ctx ended: a settle comes right after the process was stopped.
func (s *Service) awaitExit(ctx context.Context, id, socket string, stopped func() bool) {
	backoff := time.Second
	for {
		_, err := shim.Wait(ctx, socket, id)
		if stopped() || ctx.Err() != nil {
			return
		}
		s.log.Warn("waiting for exit failed, but the process still seems to run; retrying", "id", id, "error", err, "retry", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, waitRetryMax)
	}
}

// exitWatchers owns the exit-watching goroutines, one per ID.
type exitWatchers struct {
	ctx    context.Context // parent of every watcher; ends with stopAll
	cancel context.CancelFunc

	mu      sync.Mutex
	watches map[string]*exitWatch
	stopped bool
}

type exitWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newExitWatchers() *exitWatchers {
	ctx, cancel := context.WithCancel(context.Background())
	return &exitWatchers{ctx: ctx, cancel: cancel, watches: map[string]*exitWatch{}}
}

// start runs watch for id in its own goroutine, unless id is watched
// already or the watchers are stopped.
func (w *exitWatchers) start(id string, watch func(ctx context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.watches[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(w.ctx)
	ew := &exitWatch{cancel: cancel, done: make(chan struct{})}
	w.watches[id] = ew
	go func() {
		defer func() {
			w.mu.Lock()
			if w.watches[id] == ew {
				delete(w.watches, id)
			}
			w.mu.Unlock()
			cancel()
			close(ew.done)
		}()
		watch(ctx)
	}()
}

// settle cancels id's watcher, if any, and waits until it returned; a
// watcher whose process has exited publishes its event before returning.
func (w *exitWatchers) settle(id string) {
	w.mu.Lock()
	ew := w.watches[id]
	w.mu.Unlock()
	if ew == nil {
		return
	}
	ew.cancel()
	<-ew.done
}

// stopAll cancels every watcher, waits for them all and refuses new ones.
func (w *exitWatchers) stopAll() {
	w.mu.Lock()
	w.stopped = true
	var all []*exitWatch
	for _, ew := range w.watches {
		all = append(all, ew)
	}
	w.mu.Unlock()
	w.cancel()
	for _, ew := range all {
		<-ew.done
	}
}
