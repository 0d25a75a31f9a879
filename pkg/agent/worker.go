package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// worker keeps one pod as its spec says, or tears it down once the spec is
// gone (pod nil).
type worker struct {
	m   *Manager
	uid types.UID

	mu        sync.Mutex
	pod       *v1.Pod
	status    v1.PodStatus
	hasStatus bool
	startTime metav1.Time
	pulls     map[string]*pullState // image → failures
	// The current sandbox's addresses, read once.
	ipsSandbox string
	ips        []string
	wake       chan struct{}
}

type pullState struct {
	failures int
	last     time.Time
	err      string
}

func newWorker(m *Manager, uid types.UID, pod *v1.Pod) *worker {
	return &worker{m: m, uid: uid, pod: pod, pulls: map[string]*pullState{}, wake: make(chan struct{}, 1),
		startTime: metav1.Now()}
}

func (w *worker) setPod(p *v1.Pod) {
	w.mu.Lock()
	w.pod = p
	w.mu.Unlock()
	w.wakeup()
}

func (w *worker) desired() *v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *worker) wakeup() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// snapshot is the pod with its latest status; false before the first sync
// or once the pod is being removed.
func (w *worker) snapshot() (v1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pod == nil || !w.hasStatus {
		return v1.Pod{}, false
	}
	p := *w.pod.DeepCopy()
	p.Status = *w.status.DeepCopy()
	return p, true
}

func (w *worker) run(ctx context.Context) {
	log := w.m.cfg.Log.With("uid", w.uid)
	for {
		pod := w.desired()
		var next time.Duration
		if pod == nil {
			if err := w.teardown(ctx); err != nil {
				log.Warn("tear down pod", "err", err)
				next = 5 * time.Second
			} else if w.m.workerDone(w) {
				return
			}
		} else {
			var err error
			if next, err = w.sync(ctx, pod); err != nil {
				log.Warn("sync pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
				next = min(next, 5*time.Second)
			}
		}
		if resync := w.m.resyncPeriod(); next <= 0 || next > resync {
			next = resync
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// observed is what the runtime has of the pod.
type observed struct {
	sandboxes  []*runtimeapi.PodSandbox // newest first
	containers []*runtimeapi.Container  // newest first
}

func (w *worker) observe(ctx context.Context) (observed, error) {
	rt := w.m.cfg.Runtime
	sel := map[string]string{labelPodUID: string(w.uid)}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return observed{}, fmt.Errorf("list sandboxes: %w", err)
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return observed{}, fmt.Errorf("list containers: %w", err)
	}
	o := observed{sandboxes: sbs.GetItems(), containers: cs.GetContainers()}
	sort.Slice(o.sandboxes, func(i, j int) bool { return o.sandboxes[i].GetCreatedAt() > o.sandboxes[j].GetCreatedAt() })
	sort.Slice(o.containers, func(i, j int) bool { return o.containers[i].GetCreatedAt() > o.containers[j].GetCreatedAt() })
	return o, nil
}

// teardown stops the pod's containers with their grace period, then
// removes its sandboxes and logs.
func (w *worker) teardown(ctx context.Context) error {
	o, err := w.observe(ctx)
	if err != nil {
		return err
	}
	if err := w.stopContainers(ctx, o.containers, nil); err != nil {
		return err
	}
	rt := w.m.cfg.Runtime
	var logDir string
	for _, sb := range o.sandboxes {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", sb.GetId(), err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", sb.GetId(), err)
		}
		md := sb.GetMetadata()
		logDir = filepath.Join(w.m.cfg.LogDir, md.GetNamespace()+"_"+md.GetName()+"_"+md.GetUid())
	}
	if logDir != "" && w.m.cfg.LogDir != "" {
		w.m.removeLogs(logDir)
	}
	if err := w.removeVolumes(); err != nil {
		return err
	}
	if err := w.m.removePodCgroup(w.uid); err != nil {
		return err
	}
	if len(o.sandboxes) > 0 {
		w.m.cfg.Log.Info("pod removed", "uid", w.uid)
	}
	return nil
}

// stopContainers stops the running ones among cs in parallel, each with
// its grace period (the pod's when given, else the one recorded on it).
func (w *worker) stopContainers(ctx context.Context, cs []*runtimeapi.Container, pod *v1.Pod) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for _, c := range cs {
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING && c.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
			continue
		}
		grace, _ := strconv.ParseInt(c.GetAnnotations()[annotationGracePeriod], 10, 64)
		if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.m.cfg.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.GetId(), Timeout: grace}); err != nil {
				errs <- fmt.Errorf("stop container %s: %w", c.GetId(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
