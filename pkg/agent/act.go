package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// actResult is what carrying out a plan did.
type actResult struct {
	// changed: the runtime's objects changed, so the pod deserves another
	// pass at once.
	changed bool
	// failed are the containers whose start failed this pass, by name:
	// why they wait, until the next pass says more.
	failed map[string]v1.ContainerStateWaiting
}

// act carries out a plan, in the order podActions documents. It stops at
// the first error that leaves later steps without ground (a kill that
// failed, a sandbox that could not be made); a failed container start is
// recorded and the other containers still start.
func (w *worker) act(ctx context.Context, pod *v1.Pod, obs observation, a podActions) (actResult, error) {
	r := actResult{failed: map[string]v1.ContainerStateWaiting{}}
	rt := w.m.cfg.Runtime
	for name, wt := range a.waiting {
		switch wt.Reason {
		case "CrashLoopBackOff":
			w.m.events.Record(w.eventPod(), name, v1.EventTypeWarning, "BackOff",
				fmt.Sprintf("Back-off restarting failed container %s in pod %s", name, w.key))
		case "ImagePullBackOff":
			w.m.events.Record(w.eventPod(), name, v1.EventTypeNormal, "BackOff", wt.Message)
		}
	}
	for _, stage := range a.kills {
		if err := w.killStage(ctx, pod, obs, stage); err != nil {
			return r, err
		}
		r.changed = true
	}
	for _, id := range a.stopSandboxes {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			return r, fmt.Errorf("stop sandbox %s: %w", id, err)
		}
		r.changed = true
	}
	for _, id := range a.removeContainers {
		if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			return r, fmt.Errorf("remove container %s: %w", id, err)
		}
		w.m.unlinkContainerLog(id)
		w.forgetContainer(id)
		r.changed = true
	}
	for _, id := range a.removeSandboxes {
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			return r, fmt.Errorf("remove sandbox %s: %w", id, err)
		}
		delete(w.ips, id)
		r.changed = true
	}
	for _, uid := range a.cleanup {
		if err := w.cleanup(uid); err != nil {
			return r, err
		}
		delete(w.termStart, uid)
		w.m.cfg.Log.Info("pod removed", "pod", w.key, "uid", uid)
		if w.m.cfg.Terminated != nil {
			w.m.cfg.Terminated(w.namespace, w.name, uid)
		}
	}
	if a.releaseVolumes {
		if err := w.m.releaseVolumes(pod.UID); err != nil {
			return r, err
		}
	}
	if len(a.start) == 0 && a.createSandbox == nil {
		return r, nil
	}
	sandboxID, ips, hostIDs := a.sandboxID, []string(nil), ""
	for _, s := range obs.sandboxes {
		if s.id == sandboxID {
			ips, hostIDs = s.ips, s.hostIDs
		}
	}
	var us *runtimeapi.UserNamespace
	if a.createSandbox != nil {
		var err error
		if sandboxID, ips, us, err = w.createSandbox(ctx, pod, a.createSandbox); err != nil {
			w.sandboxErr = err.Error()
			return r, err
		}
		r.changed = true
	} else {
		var err error
		if us, err = sandboxUserNamespace(pod, sandboxID, hostIDs); err != nil {
			for _, s := range a.start {
				r.failed[s.container.Name] = v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
			}
			return r, err
		}
	}
	w.sandboxErr = ""
	if pod.Spec.HostNetwork {
		ips = w.m.hostIPs
	}
	for _, s := range a.start {
		if wt, err := w.startContainer(ctx, pod, sandboxID, ips, us, s); err != nil {
			w.m.cfg.Log.Warn("start container", "pod", w.key, "container", s.container.Name, "err", err)
			r.failed[s.container.Name] = wt
			if wt.Reason == "PostStartHookError" {
				r.changed = true
			}
			continue
		}
		r.changed = true
	}
	return r, nil
}

// killStage stops the containers of one stage together, each after its
// preStop hook, within its grace period.
func (w *worker) killStage(ctx context.Context, pod *v1.Pod, obs observation, stage []containerKill) error {
	ipsOf := map[string][]string{}
	for _, s := range obs.sandboxes {
		ipsOf[s.id] = s.ips
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stage))
	for i, k := range stage {
		var sandboxID string
		for _, c := range obs.containers {
			if c.id == k.id {
				sandboxID = c.sandboxID
			}
		}
		podIP := ""
		if ips := ipsOf[sandboxID]; len(ips) > 0 {
			podIP = ips[0]
		}
		if pod != nil && pod.Spec.HostNetwork && len(w.m.hostIPs) > 0 {
			podIP = w.m.hostIPs[0]
		}
		// The worker's maps are written here, not in the goroutines.
		runPreStop := k.preStop != "" && k.grace > 0 && !w.preStopRan[k.id]
		w.preStopRan[k.id] = true
		if k.reason != reasonKilling {
			w.killed[k.id] = k.message
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.kill(ctx, k, podIP, runPreStop)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// kill runs the container's preStop hook, then stops it with what is left
// of its grace period (at least 2 s after a hook, as kubelet).
func (w *worker) kill(ctx context.Context, k containerKill, podIP string, runPreStop bool) error {
	ev := w.eventPod()
	start := w.m.clock.Now()
	grace := k.grace
	if runPreStop {
		var h v1.LifecycleHandler
		if err := json.Unmarshal([]byte(k.preStop), &h); err != nil {
			w.m.cfg.Log.Warn("unreadable preStop hook", "pod", w.key, "container", k.name, "err", err)
		} else {
			hctx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
			err := w.runHook(hctx, &h, k.id, podIP, nil)
			cancel()
			if err != nil {
				w.m.events.Record(ev, k.name, v1.EventTypeWarning, "FailedPreStopHook", err.Error())
				w.m.cfg.Log.Warn("preStop hook failed", "pod", w.key, "container", k.name, "err", err)
			}
			grace = max(grace-int64(w.m.clock.Since(start)/time.Second), 2)
		}
	}
	typ := v1.EventTypeNormal
	if k.reason == reasonUnhealthy {
		typ = v1.EventTypeWarning
	}
	w.m.events.Record(ev, k.name, typ, "Killing", k.message)
	if _, err := w.m.cfg.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: k.id, Timeout: grace}); err != nil {
		return fmt.Errorf("stop container %s (%s): %w", k.name, k.id, err)
	}
	w.m.cfg.Log.Info("container stopped", "pod", w.key, "container", k.name, "id", k.id, "why", k.message)
	return nil
}

// createSandbox prepares the pod's volumes and cgroup and runs its sandbox.
// Its user namespace, nil for the host's users, is the one its
// containers get.
func (w *worker) createSandbox(ctx context.Context, pod *v1.Pod, c *sandboxCreate) (string, []string, *runtimeapi.UserNamespace, error) {
	cfg, err := w.sandboxConfig(pod, c.attempt)
	if err != nil {
		return "", nil, nil, err
	}
	cfg.Annotations[annotationStartTime] = c.startTime.UTC().Format(time.RFC3339Nano)
	us, err := w.m.userNamespace(ctx, pod)
	if err != nil {
		return "", nil, nil, err
	}
	withUserNamespace(us, cfg, nil)
	if err := w.prepareVolumes(ctx, pod); err != nil {
		return "", nil, nil, err
	}
	if err := w.m.applyPodCgroup(pod); err != nil {
		return "", nil, nil, err
	}
	resp, err := w.m.cfg.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", nil, nil, fmt.Errorf("create pod sandbox: %w", err)
	}
	id := resp.GetPodSandboxId()
	w.m.cfg.Log.Info("pod sandbox created", "pod", w.key, "sandbox", id, "attempt", c.attempt)
	ips, err := w.sandboxIPs(ctx, id)
	return id, ips, us, err
}

// startContainer makes sure of the image, creates and starts one container
// in the sandbox's user namespace us, and runs its postStart hook; the
// waiting state says why it failed.
func (w *worker) startContainer(ctx context.Context, pod *v1.Pod, sandboxID string, ips []string, us *runtimeapi.UserNamespace, s containerStart) (v1.ContainerStateWaiting, error) {
	c := s.container
	if reason, msg := w.ensureImage(ctx, pod, c); reason != "" {
		return v1.ContainerStateWaiting{Reason: reason, Message: msg}, errors.New(msg)
	}
	fail := func(reason string, err error) (v1.ContainerStateWaiting, error) {
		w.startErrs[c.Name] = startFailure{at: w.m.clock.Now(), reason: reason, message: err.Error()}
		return v1.ContainerStateWaiting{Reason: reason, Message: err.Error()}, err
	}
	sbCfg, err := w.sandboxConfig(pod, 0)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	objects, err := w.envObjects(ctx, pod, c)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	facts := podFacts{podIPs: ips, hostIPs: w.m.hostIPs, objects: objects}
	facts.nodeCPU.SetMilli(w.m.cpuCapacity)
	facts.nodeMemory.Set(w.m.memoryCapacity)
	mounts, err := w.containerMounts(pod, c)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	msgMount, err := w.terminationMessageMount(pod, c, s.attempt)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	if msgMount != nil {
		mounts = append(mounts, msgMount)
	}
	cfg, err := w.containerConfig(pod, c, s, facts, mounts)
	if err != nil {
		return fail("CreateContainerConfigError", err)
	}
	withUserNamespace(us, sbCfg, cfg)
	rt := w.m.cfg.Runtime
	created, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sbCfg})
	if err != nil {
		return fail("CreateContainerError", fmt.Errorf("create container: %w", err))
	}
	id := created.GetContainerId()
	w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeNormal, "Created", "Created container: "+c.Name)
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fail("RunContainerError", fmt.Errorf("start container: %w", err))
	}
	delete(w.startErrs, c.Name)
	w.m.linkLog(pod.Name, pod.Namespace, c.Name, id, filepath.Join(podLogDir(w.m.cfg.LogDir, pod), containerLogPath(c.Name, s.attempt)))
	w.m.cfg.Log.Info("container started", "pod", w.key, "container", c.Name, "id", id, "restarts", s.attempt)
	ev := w.eventPod()
	w.m.events.Record(ev, c.Name, v1.EventTypeNormal, "Started", "Started container "+c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		podIP := ""
		if len(ips) > 0 {
			podIP = ips[0]
		}
		if err := w.runHook(ctx, c.Lifecycle.PostStart, id, podIP, c.Ports); err != nil {
			msg := fmt.Sprintf("PostStartHook failed: %v", err)
			w.m.events.Record(ev, c.Name, v1.EventTypeWarning, "FailedPostStartHook", msg)
			w.killed[id] = msg
			// As kubelet: the container is killed and restarts per its
			// restart policy, with back-off.
			if _, serr := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: podGrace(pod)}); serr != nil {
				return v1.ContainerStateWaiting{Reason: "PostStartHookError", Message: msg}, errors.Join(err, serr)
			}
			return v1.ContainerStateWaiting{Reason: "PostStartHookError", Message: msg}, err
		}
	}
	return v1.ContainerStateWaiting{}, nil
}

// ensureImage makes the container's image present per its pull policy; a
// reason says why the container must wait.
func (w *worker) ensureImage(ctx context.Context, pod *v1.Pod, c *v1.Container) (reason, msg string) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	if c.ImagePullPolicy != v1.PullAlways {
		st, err := w.m.cfg.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		if err != nil {
			return "ErrImageInspect", err.Error()
		}
		if st.GetImage() != nil {
			w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
			return "", ""
		}
		if c.ImagePullPolicy == v1.PullNever {
			w.startErrs[c.Name] = startFailure{at: w.m.clock.Now(), reason: "ErrImageNeverPull",
				message: fmt.Sprintf("container image %q is not present with pull policy of Never", c.Image)}
			return "ErrImageNeverPull", w.startErrs[c.Name].message
		}
	}
	w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	began := w.m.clock.Now()
	if err := w.pull(ctx, spec, pullCredentials(c.Image, w.podPullSecrets(ctx, pod, c.Name))); err != nil {
		f := w.pulls[c.Image]
		f.failures++
		f.last, f.err = w.m.clock.Now(), err.Error()
		w.pulls[c.Image] = f
		w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		return "ErrImagePull", err.Error()
	}
	delete(w.pulls, c.Image)
	w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeNormal, "Pulled",
		fmt.Sprintf("Successfully pulled image %q in %s", c.Image, w.m.clock.Since(began).Round(time.Millisecond)))
	return "", ""
}

// pull pulls without credentials if none match the image, else with each
// in turn until one works, as kubelet does.
func (w *worker) pull(ctx context.Context, spec *runtimeapi.ImageSpec, creds []*runtimeapi.AuthConfig) error {
	if len(creds) == 0 {
		creds = []*runtimeapi.AuthConfig{nil}
	}
	if w.m.pullSlots != nil {
		select {
		case w.m.pullSlots <- struct{}{}:
			defer func() { <-w.m.pullSlots }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	for _, auth := range creds {
		if _, err = w.m.cfg.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth}); err == nil {
			return nil
		}
	}
	return err
}

// cleanup removes what the agent keeps outside the runtime for a UID
// whose objects are gone: logs, volumes, the pod cgroup.
func (w *worker) cleanup(uid types.UID) error {
	if w.m.cfg.LogDir != "" {
		dir := podLogDirOf(w.m.cfg.LogDir, w.namespace, w.name, uid)
		w.m.unlinkPodLogs(w.name, w.namespace, dir)
		w.m.removeLogs(dir)
	}
	if err := w.m.removeVolumes(uid); err != nil {
		return err
	}
	w.m.ids.Release(uid)
	return w.m.removePodCgroup(uid)
}
