package agent

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// record turns what the pass saw and decided into the pod's status.
func (w *worker) record(ctx context.Context, s *podSync) {
	pod := s.pod
	st := v1.PodStatus{QOSClass: qosClass(pod)}
	w.mu.Lock()
	st.StartTime = &w.startTime
	w.mu.Unlock()
	for _, ip := range s.ips {
		st.PodIPs = append(st.PodIPs, v1.PodIP{IP: ip})
	}
	if len(s.ips) > 0 {
		st.PodIP = s.ips[0]
	}
	for _, ip := range w.m.hostIPs {
		st.HostIPs = append(st.HostIPs, v1.HostIP{IP: ip})
	}
	if len(w.m.hostIPs) > 0 {
		st.HostIP = w.m.hostIPs[0]
	}
	sandboxID := ""
	if len(s.obs.sandboxes) > 0 {
		sandboxID = s.obs.sandboxes[0].GetId()
	}
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, w.containerStatusOf(ctx, s, &c, sandboxID))
	}
	running, ready, waiting, succeeded, failed := 0, 0, 0, 0, 0
	for _, c := range pod.Spec.Containers {
		cs := w.containerStatusOf(ctx, s, &c, sandboxID)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		switch {
		case cs.State.Running != nil:
			running++
			if cs.Ready {
				ready++
			}
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			succeeded++
		case cs.State.Terminated != nil:
			failed++
		case cs.LastTerminationState.Terminated != nil && pod.Spec.RestartPolicy != v1.RestartPolicyNever:
			running++ // restarting
		default:
			waiting++
		}
	}
	n := len(pod.Spec.Containers)
	switch {
	case s.finished && succeeded == n:
		st.Phase = v1.PodSucceeded
	case s.finished:
		st.Phase = v1.PodFailed
	case !s.initDone || waiting > 0:
		st.Phase = v1.PodPending
	case running > 0:
		st.Phase = v1.PodRunning
	case succeeded == n:
		st.Phase = v1.PodSucceeded
	default:
		st.Phase = v1.PodFailed
	}
	sandboxReady := s.sandbox != nil && !s.finished
	containersReady := ready == n && sandboxReady
	now := metav1.Now()
	w.mu.Lock()
	old := w.status.Conditions
	w.mu.Unlock()
	st.Conditions = []v1.PodCondition{
		condition(old, v1.PodReadyToStartContainers, sandboxReady, now, ""),
		condition(old, v1.PodInitialized, s.initDone, now, "ContainersNotInitialized"),
		condition(old, v1.ContainersReady, containersReady, now, "ContainersNotReady"),
		condition(old, v1.PodReady, containersReady, now, "ContainersNotReady"),
	}
	if s.sbErr != "" {
		st.Conditions[0].Reason, st.Conditions[0].Message = "SandboxCreateFailed", s.sbErr
	}
	w.mu.Lock()
	w.status, w.hasStatus = st, true
	w.mu.Unlock()
}

// condition keeps the transition time of a condition whose status did not
// change.
func condition(old []v1.PodCondition, typ v1.PodConditionType, ok bool, now metav1.Time, reason string) v1.PodCondition {
	c := v1.PodCondition{Type: typ, Status: v1.ConditionFalse, LastTransitionTime: now, Reason: reason}
	if ok {
		c.Status, c.Reason = v1.ConditionTrue, ""
	}
	for _, o := range old {
		if o.Type == typ && o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
		}
	}
	return c
}

// containerStatusOf is the status of one container: its newest instance in
// the newest sandbox, with the instance before as its last state.
func (w *worker) containerStatusOf(ctx context.Context, s *podSync, c *v1.Container, sandboxID string) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: c.Name, Image: c.Image}
	all := s.byName[c.Name]
	if len(all) > 0 {
		cs.RestartCount = int32(all[0].GetMetadata().GetAttempt())
	}
	cur := latestIn(all, sandboxID)
	var prev *runtimeapi.Container
	for _, x := range all {
		if x != cur && x.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			prev = x
			break
		}
	}
	if prev != nil {
		cs.LastTerminationState = w.stateOf(ctx, s, prev)
	}
	if wt, ok := s.waiting[c.Name]; ok {
		cs.State = v1.ContainerState{Waiting: &wt}
		if wt.Reason == "ContainerCreating" && cur != nil {
			cs.LastTerminationState = w.stateOf(ctx, s, cur)
		}
		return cs
	}
	if cur == nil {
		cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		return cs
	}
	st := w.containerStatus(ctx, s, cur)
	cs.ContainerID = w.m.runtimeName() + "://" + cur.GetId()
	cs.ImageID = st.GetImageRef()
	if cs.ImageID == "" {
		cs.ImageID = cur.GetImageRef()
	}
	cs.State = w.stateOf(ctx, s, cur)
	if cs.State.Running != nil {
		started := true
		cs.Started = &started
		cs.Ready = true // no readiness probes yet: running is ready
	} else {
		started := false
		cs.Started = &started
	}
	return cs
}

func (w *worker) stateOf(ctx context.Context, s *podSync, c *runtimeapi.Container) v1.ContainerState {
	st := w.containerStatus(ctx, s, c)
	ts := func(ns int64) metav1.Time {
		if ns == 0 {
			return metav1.Time{}
		}
		return metav1.NewTime(time.Unix(0, ns))
	}
	switch st.GetState() {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: ts(st.GetStartedAt())}}
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	}
	reason := st.GetReason()
	if reason == "" {
		reason = "Completed"
		if st.GetExitCode() != 0 {
			reason = "Error"
		}
	}
	return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
		ExitCode: st.GetExitCode(), Reason: reason, Message: st.GetMessage(),
		StartedAt: ts(st.GetStartedAt()), FinishedAt: ts(st.GetFinishedAt()),
		ContainerID: w.m.runtimeName() + "://" + c.GetId(),
	}}
}
