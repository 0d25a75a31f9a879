package agent

import (
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusFacts is what a pod's status needs besides the plan's input and
// output.
type statusFacts struct {
	runtime string // container IDs are shown as <runtime>://<id>
	hostIPs []string
	// killed says why the agent killed a container, by ID: the message of
	// its terminated state when it wrote none itself.
	killed map[string]string
	// previous is the status last published, for the conditions'
	// transition times.
	previous v1.PodStatus
}

// podStatus computes the status of the desired pod from one pass's input
// and plan, as the API server would hold it. Pure, like plan.
func podStatus(in planInput, a podActions, f statusFacts) v1.PodStatus {
	pod := in.pod
	st := v1.PodStatus{QOSClass: qosClass(pod)}
	sbs := in.obs.sandboxesOf(pod.UID)
	cs := in.obs.containersOf(pod.UID)

	start := in.firstSeen
	if len(sbs) > 0 {
		start = sbs[len(sbs)-1].createdAt
		if t := sbs[0].startTime; !t.IsZero() {
			start = t
		}
	}
	if !start.IsZero() {
		t := metav1.NewTime(start)
		st.StartTime = &t
	}
	var sb *sandboxObs
	for _, s := range sbs {
		if s.id == a.sandboxID {
			sb = s
		}
	}
	ips := []string(nil)
	if sb != nil {
		ips = sb.ips
	}
	if pod.Spec.HostNetwork && (sb != nil || a.createSandbox != nil) {
		ips = f.hostIPs // the pod's addresses are the node's, as kubelet reports
	}
	for _, ip := range ips {
		st.PodIPs = append(st.PodIPs, v1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		st.PodIP = ips[0]
	}
	for _, ip := range f.hostIPs {
		st.HostIPs = append(st.HostIPs, v1.HostIP{IP: ip})
	}
	if len(f.hostIPs) > 0 {
		st.HostIP = f.hostIPs[0]
	}

	var unready, uninitialised []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s := containerStatus(in, a, f, c, cs)
		st.InitContainerStatuses = append(st.InitContainerStatuses, s)
		if isSidecar(c) && !s.Ready {
			unready = append(unready, c.Name)
		}
		if !a.initDone && !(s.State.Terminated != nil && s.State.Terminated.ExitCode == 0) && !(isSidecar(c) && s.Started != nil && *s.Started) {
			uninitialised = append(uninitialised, c.Name)
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s := containerStatus(in, a, f, c, cs)
		st.ContainerStatuses = append(st.ContainerStatuses, s)
		if !s.Ready {
			unready = append(unready, c.Name)
		}
	}
	st.Phase = podPhase(pod, &st, a)

	sandboxReady := sb != nil && sb.ready && !a.finished
	cond := func(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(in.now)}
		if ok {
			c = v1.PodCondition{Type: t, Status: v1.ConditionTrue, LastTransitionTime: c.LastTransitionTime}
		}
		for _, o := range f.previous.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	readyReason, readyMsg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if a.finished {
		readyReason, readyMsg = "PodCompleted", ""
	}
	initMsg := ""
	if len(uninitialised) > 0 {
		initMsg = fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(uninitialised, " "))
	}
	allReady := len(unready) == 0 && sandboxReady
	st.Conditions = []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, sandboxReady, "", ""),
		cond(v1.PodInitialized, a.initDone, "ContainersNotInitialized", initMsg),
		cond(v1.PodReady, allReady, readyReason, readyMsg),
		cond(v1.ContainersReady, allReady, readyReason, readyMsg),
		cond(v1.PodScheduled, true, "", ""),
	}
	if a.evicted && in.evicted != nil {
		// As kubelet reports an eviction or a shutdown: the pod failed, and why; the
		// DisruptionTarget condition tells controllers it was the node.
		st.Phase, st.Reason, st.Message = v1.PodFailed, in.evicted.Reason, in.evicted.Message
		if !in.evicted.rejected {
			c := cond(v1.DisruptionTarget, true, "", "")
			c.Reason, c.Message = "TerminationByKubelet", in.evicted.Message
			st.Conditions = append(st.Conditions, c)
		}
	}
	return st
}

// containerStatus is one container as kubectl shows it: the state of its
// newest instance in the pod's sandbox, or why it waits; the newest instance
// that terminated before as its last state.
func containerStatus(in planInput, a podActions, f statusFacts, c *v1.Container, cs []*containerObs) v1.ContainerStatus {
	s := v1.ContainerStatus{Name: c.Name, Image: c.Image}
	insts := instances(cs, c.Name)
	if len(insts) > 0 {
		s.RestartCount = int32(insts[0].attempt)
	}
	var cur *containerObs
	if a.sandboxID != "" {
		cur = latestIn(insts, a.sandboxID)
	}
	// lastExited is the newest instance that terminated, other than skip.
	lastExited := func(skip *containerObs) *containerObs {
		for _, x := range insts {
			if x != skip && x.exited() {
				return x
			}
		}
		return nil
	}
	show := func(x *containerObs) {
		s.ContainerID = f.runtime + "://" + x.id
		s.ImageID = x.imageRef
	}
	no := false
	s.Started = &no
	if wt, ok := a.waiting[c.Name]; ok {
		s.State.Waiting = &wt
		if prev := lastExited(nil); prev != nil {
			s.LastTerminationState = terminated(prev, f)
			show(prev)
		}
		return s
	}
	switch {
	case cur == nil:
		reason := "PodInitializing"
		if a.createSandbox != nil {
			reason = "ContainerCreating"
		}
		s.State.Waiting = &v1.ContainerStateWaiting{Reason: reason}
		if prev := lastExited(nil); prev != nil {
			s.LastTerminationState = terminated(prev, f)
		}
	case cur.running():
		show(cur)
		s.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.startedAt)}
		st := started(c, cur, in.health)
		s.Started = &st
		s.Ready = ready(c, cur, in.health)
		if prev := lastExited(cur); prev != nil {
			s.LastTerminationState = terminated(prev, f)
		}
	case cur.exited():
		show(cur)
		s.State = terminated(cur, f)
		if prev := lastExited(cur); prev != nil {
			s.LastTerminationState = terminated(prev, f)
		}
	default: // created, not started yet
		show(cur)
		s.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return s
}

func terminated(c *containerObs, f statusFacts) v1.ContainerState {
	reason := c.reason
	if reason == "" {
		reason = "Completed"
		if c.exitCode != 0 {
			reason = "Error"
		}
	}
	msg := c.message
	if msg == "" {
		msg = f.killed[c.id]
	}
	ts := func(t time.Time) metav1.Time {
		if t.IsZero() {
			return metav1.Time{}
		}
		return metav1.NewTime(t)
	}
	return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
		ExitCode: c.exitCode, Reason: reason, Message: msg,
		StartedAt: ts(c.startedAt), FinishedAt: ts(c.finishedAt),
		ContainerID: f.runtime + "://" + c.id,
	}}
}

// podPhase is the pod's phase as Kubernetes defines it, from its app
// containers' statuses (sidecars never keep a pod from completing).
func podPhase(pod *v1.Pod, st *v1.PodStatus, a podActions) v1.PodPhase {
	if !a.initDone {
		if a.finished {
			return v1.PodFailed // an init container failed and is not retried
		}
		return v1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, c := range st.ContainerStatuses {
		switch {
		case c.State.Running != nil:
			running++
		case c.State.Terminated != nil:
			stopped++
			if c.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case c.LastTerminationState.Terminated != nil:
			stopped++ // restarting
		default:
			waiting++
		}
	}
	switch {
	case a.finished && stopped == succeeded && waiting == 0:
		return v1.PodSucceeded
	case a.finished:
		return v1.PodFailed
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0 && pod.Spec.RestartPolicy == v1.RestartPolicyNever && stopped != succeeded:
		return v1.PodFailed
	case stopped > 0 && stopped == succeeded && pod.Spec.RestartPolicy != v1.RestartPolicyAlways:
		return v1.PodSucceeded
	case stopped > 0:
		return v1.PodRunning
	}
	return v1.PodPending
}
