package agent

import (
	"context"
	"fmt"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podSync is one pass over a pod: what was observed and decided.
type podSync struct {
	pod     *v1.Pod
	obs     observed
	sandbox *runtimeapi.PodSandbox // the ready sandbox, if any
	ips     []string
	// byName lists each container's instances, newest first.
	byName map[string][]*runtimeapi.Container
	// status of the containers read this pass, by ID.
	statuses map[string]*runtimeapi.ContainerStatus
	// waiting says why a container is not running, by name.
	waiting map[string]v1.ContainerStateWaiting
	// next is when the pod needs another look (a back-off ending).
	next time.Duration
	// finished: every container is done and none will restart.
	finished bool
	initDone bool
	sbErr    string
}

func (s *podSync) wakeIn(d time.Duration) {
	if d > 0 && (s.next == 0 || d < s.next) {
		s.next = d
	}
}

// sync brings the pod to its spec and records its status; the duration
// says when it wants to look again.
func (w *worker) sync(ctx context.Context, pod *v1.Pod) (time.Duration, error) {
	obs, err := w.observe(ctx)
	if err != nil {
		return 0, err
	}
	s := &podSync{pod: pod, obs: obs, byName: map[string][]*runtimeapi.Container{},
		statuses: map[string]*runtimeapi.ContainerStatus{}, waiting: map[string]v1.ContainerStateWaiting{}}
	for _, c := range obs.containers {
		s.byName[c.GetMetadata().GetName()] = append(s.byName[c.GetMetadata().GetName()], c)
	}
	if len(obs.sandboxes) > 0 && obs.sandboxes[0].GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
		s.sandbox = obs.sandboxes[0]
	}
	err = w.act(ctx, s)
	w.record(ctx, s)
	return s.next, err
}

func (w *worker) act(ctx context.Context, s *podSync) error {
	if err := w.stopStaleSandboxes(ctx, s); err != nil {
		return err
	}
	if s.sandbox == nil {
		if done, err := w.finishedWithoutSandbox(ctx, s); done || err != nil {
			return err
		}
		if err := w.createSandbox(ctx, s); err != nil {
			s.sbErr = err.Error()
			s.wakeIn(5 * time.Second)
			return err
		}
	}
	ips, err := w.sandboxIPs(ctx, s.sandbox.GetId())
	if err != nil {
		return err
	}
	if s.pod.Spec.HostNetwork {
		ips = w.m.hostIPs // the pod's addresses are the node's, as kubelet reports
	}
	s.ips = ips
	if !w.runInitContainers(ctx, s) {
		if s.finished { // an init container failed and will not be retried
			if err := w.stopSandbox(ctx, s.sandbox.GetId()); err != nil {
				return err
			}
		}
		return w.gc(ctx, s)
	}
	s.initDone = true
	allDone := true
	for i := range s.pod.Spec.Containers {
		if !w.syncContainer(ctx, s, &s.pod.Spec.Containers[i]) {
			allDone = false
		}
	}
	if allDone && s.pod.Spec.RestartPolicy != v1.RestartPolicyAlways {
		// A completed pod keeps its containers (and logs) but not its
		// sandbox, as kubelet does.
		s.finished = true
		if err := w.stopSandbox(ctx, s.sandbox.GetId()); err != nil {
			return err
		}
	}
	return w.gc(ctx, s)
}

// stopSandbox gives up the sandbox of a pod that finished; its containers
// stay, for their logs and status.
func (w *worker) stopSandbox(ctx context.Context, id string) error {
	if _, err := w.m.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop sandbox of finished pod: %w", err)
	}
	return nil
}

// stopStaleSandboxes stops every sandbox but the newest (a crash between
// creating a new one and stopping the old leaves two).
func (w *worker) stopStaleSandboxes(ctx context.Context, s *podSync) error {
	for i, sb := range s.obs.sandboxes {
		if i == 0 || sb.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		var cs []*runtimeapi.Container
		for _, c := range s.obs.containers {
			if c.GetPodSandboxId() == sb.GetId() {
				cs = append(cs, c)
			}
		}
		if err := w.stopContainers(ctx, cs, s.pod); err != nil {
			return err
		}
		if _, err := w.m.cfg.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			return fmt.Errorf("stop old sandbox %s: %w", sb.GetId(), err)
		}
	}
	return nil
}

// finishedWithoutSandbox: a pod whose sandbox is gone is recreated, unless
// it completed, or it never restarts and its containers already ran.
func (w *worker) finishedWithoutSandbox(ctx context.Context, s *podSync) (bool, error) {
	if len(s.obs.sandboxes) == 0 {
		return false, nil
	}
	last := s.obs.sandboxes[0].GetId()
	ran := false
	for _, c := range s.obs.containers {
		if c.GetPodSandboxId() == last {
			ran = true
		}
	}
	switch s.pod.Spec.RestartPolicy {
	case v1.RestartPolicyNever:
		if !ran {
			return false, nil
		}
	case v1.RestartPolicyOnFailure:
		if !ran || !w.allSucceeded(ctx, s, last) {
			return false, nil
		}
	default:
		return false, nil
	}
	// Containers still running in a dead sandbox are stopped.
	var cs []*runtimeapi.Container
	for _, c := range s.obs.containers {
		if c.GetPodSandboxId() == last {
			cs = append(cs, c)
		}
	}
	s.finished, s.initDone = true, w.initSucceeded(ctx, s, last)
	return true, w.stopContainers(ctx, cs, s.pod)
}

// allSucceeded: every app container's latest instance in the sandbox
// exited 0.
func (w *worker) allSucceeded(ctx context.Context, s *podSync, sandboxID string) bool {
	for _, c := range s.pod.Spec.Containers {
		cur := latestIn(s.byName[c.Name], sandboxID)
		if cur == nil {
			return false
		}
		st := w.containerStatus(ctx, s, cur)
		if st == nil || st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 0 {
			return false
		}
	}
	return true
}

// initSucceeded: every init container's latest instance in the sandbox
// exited 0.
func (w *worker) initSucceeded(ctx context.Context, s *podSync, sandboxID string) bool {
	for _, c := range s.pod.Spec.InitContainers {
		cur := latestIn(s.byName[c.Name], sandboxID)
		if cur == nil {
			return false
		}
		if st := w.containerStatus(ctx, s, cur); st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 0 {
			return false
		}
	}
	return true
}

func (w *worker) createSandbox(ctx context.Context, s *podSync) error {
	var attempt uint32
	if len(s.obs.sandboxes) > 0 {
		attempt = s.obs.sandboxes[0].GetMetadata().GetAttempt() + 1
		// What ran in the dead sandbox is stopped first.
		if err := w.stopContainers(ctx, s.obs.containers, s.pod); err != nil {
			return err
		}
	}
	cfg, err := w.sandboxConfig(s.pod, attempt)
	if err != nil {
		return err
	}
	if err := w.prepareVolumes(s.pod); err != nil {
		return err
	}
	if err := w.m.applyPodCgroup(s.pod); err != nil {
		return err
	}
	resp, err := w.m.cfg.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return fmt.Errorf("create pod sandbox: %w", err)
	}
	w.m.cfg.Log.Info("pod sandbox created", "pod", s.pod.Namespace+"/"+s.pod.Name, "sandbox", resp.GetPodSandboxId(), "attempt", attempt)
	s.sandbox = &runtimeapi.PodSandbox{Id: resp.GetPodSandboxId(), Metadata: cfg.GetMetadata(),
		State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: time.Now().UnixNano()}
	s.obs.sandboxes = append([]*runtimeapi.PodSandbox{s.sandbox}, s.obs.sandboxes...)
	return nil
}

// sandboxIPs reads the sandbox's addresses once: they never change.
func (w *worker) sandboxIPs(ctx context.Context, id string) ([]string, error) {
	w.mu.Lock()
	if w.ipsSandbox == id {
		defer w.mu.Unlock()
		return w.ips, nil
	}
	w.mu.Unlock()
	resp, err := w.m.cfg.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, fmt.Errorf("sandbox status: %w", err)
	}
	var ips []string
	if net := resp.GetStatus().GetNetwork(); net.GetIp() != "" {
		ips = append(ips, net.GetIp())
		for _, ip := range net.GetAdditionalIps() {
			ips = append(ips, ip.GetIp())
		}
	}
	w.mu.Lock()
	w.ipsSandbox, w.ips = id, ips
	w.mu.Unlock()
	return ips, nil
}

// runInitContainers runs the init containers one after the other; true
// once all have succeeded in this sandbox.
func (w *worker) runInitContainers(ctx context.Context, s *podSync) bool {
	for i := range s.pod.Spec.InitContainers {
		c := &s.pod.Spec.InitContainers[i]
		cur := latestIn(s.byName[c.Name], s.sandbox.GetId())
		if cur != nil {
			st := w.containerStatus(ctx, s, cur)
			if st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED && st.GetExitCode() == 0 {
				continue
			}
			if st.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
				return false
			}
			if s.pod.Spec.RestartPolicy == v1.RestartPolicyNever && st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
				s.finished = true
				return false
			}
		}
		w.startOrBackOff(ctx, s, c, cur)
		return false
	}
	return true
}

// syncContainer keeps one app container running per the restart policy;
// true when it is done for good (exited and not to be restarted).
func (w *worker) syncContainer(ctx context.Context, s *podSync, c *v1.Container) bool {
	cur := latestIn(s.byName[c.Name], s.sandbox.GetId())
	if cur != nil {
		switch cur.GetState() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			if cur.GetAnnotations()[annotationContainerHash] == containerHash(c) {
				return false
			}
			w.m.cfg.Log.Info("container spec changed: replacing it", "pod", s.pod.Namespace+"/"+s.pod.Name, "container", c.Name)
			if err := w.stopContainers(ctx, []*runtimeapi.Container{cur}, s.pod); err != nil {
				w.m.cfg.Log.Warn("stop changed container", "err", err)
				return false
			}
			delete(s.statuses, cur.GetId())
			cur.State = runtimeapi.ContainerState_CONTAINER_EXITED
		case runtimeapi.ContainerState_CONTAINER_EXITED, runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			st := w.containerStatus(ctx, s, cur)
			if !shouldRestart(s.pod.Spec.RestartPolicy, st.GetExitCode()) {
				return true
			}
		}
	}
	w.startOrBackOff(ctx, s, c, cur)
	return false
}

func shouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// startOrBackOff starts the next attempt of c, unless the previous one
// (cur, in this sandbox) exited so recently that back-off says wait.
func (w *worker) startOrBackOff(ctx context.Context, s *podSync, c *v1.Container, cur *runtimeapi.Container) {
	attempt, step := uint32(0), 0
	if all := s.byName[c.Name]; len(all) > 0 {
		attempt = all[0].GetMetadata().GetAttempt() + 1
	}
	if cur != nil {
		st := w.containerStatus(ctx, s, cur)
		prevStep, _ := strconv.Atoi(cur.GetAnnotations()[annotationBackoffStep])
		started, finished := time.Unix(0, st.GetStartedAt()), time.Unix(0, st.GetFinishedAt())
		if st.GetFinishedAt() == 0 { // created but never ran: it failed when created
			finished = time.Unix(0, st.GetCreatedAt())
		}
		if st.GetStartedAt() == 0 {
			started = finished
		}
		step = nextBackoffStep(prevStep, finished.Sub(started))
		if wait := time.Until(finished.Add(backoffDelay(step))); wait > 0 {
			s.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					backoffDelay(step), c.Name, s.pod.Name, s.pod.Namespace, s.pod.UID)}
			s.wakeIn(wait)
			return
		}
	}
	if reason, msg, retry := w.ensureImage(ctx, c); reason != "" {
		s.waiting[c.Name] = v1.ContainerStateWaiting{Reason: reason, Message: msg}
		s.wakeIn(retry)
		return
	}
	if err := w.startContainer(ctx, s, c, attempt, step); err != nil {
		w.m.cfg.Log.Warn("start container", "pod", s.pod.Namespace+"/"+s.pod.Name, "container", c.Name, "err", err)
		s.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		s.wakeIn(backoffBase)
		return
	}
	s.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "ContainerCreating"}
}

func (w *worker) startContainer(ctx context.Context, s *podSync, c *v1.Container, attempt uint32, step int) error {
	sbCfg, err := w.sandboxConfig(s.pod, s.sandbox.GetMetadata().GetAttempt())
	if err != nil {
		return err
	}
	facts := podFacts{podIPs: s.ips, hostIPs: w.m.hostIPs}
	facts.nodeCPU.SetMilli(w.m.cpuCapacity)
	facts.nodeMemory.Set(w.m.memoryCapacity)
	mounts, err := w.containerMounts(s.pod, c)
	if err != nil {
		return err
	}
	cfg, err := w.containerConfig(s.pod, c, attempt, step, facts, mounts)
	if err != nil {
		return err
	}
	rt := w.m.cfg.Runtime
	created, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: s.sandbox.GetId(), Config: cfg, SandboxConfig: sbCfg,
	})
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: created.GetContainerId()}); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	w.m.cfg.Log.Info("container started", "pod", s.pod.Namespace+"/"+s.pod.Name, "container", c.Name,
		"id", created.GetContainerId(), "restarts", attempt)
	return nil
}

// ensureImage makes the container's image present per its pull policy; a
// non-empty reason says why the container must wait, and retry when to
// try again.
func (w *worker) ensureImage(ctx context.Context, c *v1.Container) (reason, msg string, retry time.Duration) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	if c.ImagePullPolicy != v1.PullAlways {
		st, err := w.m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		if err != nil {
			return "ErrImageInspect", err.Error(), backoffBase
		}
		if st.GetImage() != nil {
			return "", "", 0
		}
		if c.ImagePullPolicy == v1.PullNever {
			return "ErrImageNeverPull", fmt.Sprintf("container image %q is not present with pull policy of Never", c.Image), 5 * time.Second
		}
	}
	w.mu.Lock()
	ps := w.pulls[c.Image]
	w.mu.Unlock()
	if ps != nil {
		delay := min(backoffBase<<(ps.failures-1), backoffMax)
		if wait := time.Until(ps.last.Add(delay)); wait > 0 {
			return "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", c.Image, ps.err), wait
		}
	}
	if _, err := w.m.cfg.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
		w.mu.Lock()
		if ps == nil {
			ps = &pullState{}
			w.pulls[c.Image] = ps
		}
		ps.failures++
		ps.last, ps.err = time.Now(), err.Error()
		delay := min(backoffBase<<(ps.failures-1), backoffMax)
		w.mu.Unlock()
		return "ErrImagePull", err.Error(), delay
	}
	w.mu.Lock()
	delete(w.pulls, c.Image)
	w.mu.Unlock()
	return "", "", 0
}

// containerStatus reads a container's status once per pass.
func (w *worker) containerStatus(ctx context.Context, s *podSync, c *runtimeapi.Container) *runtimeapi.ContainerStatus {
	if st, ok := s.statuses[c.GetId()]; ok {
		return st
	}
	resp, err := w.m.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
	st := resp.GetStatus()
	if err != nil || st == nil {
		st = &runtimeapi.ContainerStatus{Id: c.GetId(), State: c.GetState(), Metadata: c.GetMetadata(),
			Annotations: c.GetAnnotations(), Reason: "Unknown"}
	}
	s.statuses[c.GetId()] = st
	return st
}

// latestIn is the newest of cs in the sandbox.
func latestIn(cs []*runtimeapi.Container, sandboxID string) *runtimeapi.Container {
	for _, c := range cs {
		if c.GetPodSandboxId() == sandboxID {
			return c
		}
	}
	return nil
}

// gc removes exited containers but the newest two of each name (the
// current one and the previous, for `crictl logs --previous`), and
// sandboxes no kept container needs.
func (w *worker) gc(ctx context.Context, s *podSync) error {
	rt := w.m.cfg.Runtime
	keepSandbox := map[string]bool{}
	if s.sandbox != nil {
		keepSandbox[s.sandbox.GetId()] = true
	}
	if len(s.obs.sandboxes) > 0 {
		keepSandbox[s.obs.sandboxes[0].GetId()] = true
	}
	for _, cs := range s.byName {
		for i, c := range cs {
			if i < 2 || c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
				keepSandbox[c.GetPodSandboxId()] = true
				continue
			}
			if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.GetId()}); err != nil {
				return fmt.Errorf("remove old container %s: %w", c.GetId(), err)
			}
		}
	}
	for _, sb := range s.obs.sandboxes {
		if keepSandbox[sb.GetId()] || sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			return fmt.Errorf("remove old sandbox %s: %w", sb.GetId(), err)
		}
	}
	return nil
}
