package agent

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/events"
	"github.com/berth-project/berth/pkg/probe"
)

// worker keeps one pod (a namespace and name) as its desired spec says:
// each pass observes the runtime, plans, publishes the status and acts.
// Keyed by name rather than UID, it serialises a pod's versions: a new
// version starts only once the previous one is gone, as kubelet does for
// static pods.
type worker struct {
	m                    *Manager
	key, namespace, name string
	wake                 chan struct{}

	mu  sync.Mutex
	pod *v1.Pod // desired; nil: remove it
	// uid is the UID of the version last published, for events recorded
	// from other goroutines (the prober's).
	uid types.UID
	// cancel ends the pass in progress when it is a sync that a new
	// desired pod (or its removal) makes moot, such as a slow pull.
	cancel context.CancelFunc
	// evictions are the versions evicted (nil: read, not evicted), by UID.
	evictions map[types.UID]*evictionRecord

	// Owned by the worker's goroutine.
	lastPass  *v1.Pod // the desired pod of the last pass, for its operation type
	firstSeen time.Time
	known     *v1.Pod // the last desired pod, shown while it terminates
	published v1.PodStatus
	pulls     map[string]pullFailure
	startErrs map[string]startFailure
	termStart map[types.UID]time.Time
	// volumesRefreshed is when configMap, secret and projected volumes
	// were last brought up to date.
	volumesRefreshed time.Time
	killed           map[string]string // container ID → why the agent killed it
	preStopRan       map[string]bool
	seen             map[string]containerObs // statuses by container ID
	ips              map[string][]string     // by sandbox ID
	sandboxErr       string
	gate             gateRecord
	gateLoaded       bool
	rollback         string // why the desired version does not run
}

func newWorker(m *Manager, namespace, name string, pod *v1.Pod) *worker {
	return &worker{m: m, key: namespace + "/" + name, namespace: namespace, name: name, pod: pod,
		wake: make(chan struct{}, 1), firstSeen: m.clock.Now(),
		pulls: map[string]pullFailure{}, startErrs: map[string]startFailure{}, termStart: map[types.UID]time.Time{},
		killed: map[string]string{}, preStopRan: map[string]bool{}, seen: map[string]containerObs{}, ips: map[string][]string{},
		evictions: map[types.UID]*evictionRecord{}}
}

// setPod changes the desired pod and wakes the worker; a sync in progress
// for another version is cancelled.
func (w *worker) setPod(p *v1.Pod) {
	w.mu.Lock()
	old := w.pod
	w.pod = p
	if w.cancel != nil && (p == nil || old == nil || p.UID != old.UID) {
		w.cancel()
	}
	w.mu.Unlock()
	w.wakeup()
}

func (w *worker) desired() *v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *worker) setCancel(c context.CancelFunc) {
	w.mu.Lock()
	w.cancel = c
	w.mu.Unlock()
}

func (w *worker) wakeup() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	for {
		pod, gateWait := w.applyGate(w.desired())
		pctx, cancel := context.WithCancel(ctx)
		op, began := w.operation(pod), w.m.clock.Now()
		r, err := w.pass(pctx, pod, cancel)
		if f := w.m.cfg.SyncDuration; f != nil {
			f(op, w.m.clock.Since(began))
		}
		cancelled := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		next := r.requeue
		if gateWait > 0 && (next <= 0 || gateWait < next) {
			next = gateWait
		}
		switch {
		case err != nil && cancelled:
			// A new desired pod made this pass moot: the next one is due now.
			w.m.cfg.Log.Debug("sync pod cancelled", "pod", w.key, "err", err)
			continue
		case err != nil:
			w.m.cfg.Log.Warn("sync pod", "pod", w.key, "err", err)
			if next <= 0 || next > 5*time.Second {
				next = 5 * time.Second
			}
		case r.gone && w.m.workerDone(w):
			if err := w.m.saveGate(w.namespace, w.name, gateRecord{}); err != nil {
				w.m.cfg.Log.Warn("forget the pod's versions", "pod", w.key, "err", err)
			}
			return
		case r.changed:
			continue // look at what the actions did
		}
		if resync := w.m.resyncPeriod(); next <= 0 || next > resync {
			next = resync
		}
		t := w.m.clock.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C():
		}
		t.Stop()
	}
}

// operation is what a pass over pod is, in kubelet's words.
func (w *worker) operation(pod *v1.Pod) string {
	last := w.lastPass
	w.lastPass = pod
	switch {
	case pod == nil || pod.DeletionTimestamp != nil:
		return "kill"
	case last == nil || last.UID != pod.UID:
		return "create"
	case last != pod:
		return "update"
	}
	return "sync"
}

// applyGate decides which version of the pod runs (see gate) and keeps
// the record of its versions on disk.
func (w *worker) applyGate(desired *v1.Pod) (*v1.Pod, time.Duration) {
	if !w.gateLoaded {
		rec, err := w.m.loadGate(w.namespace, w.name)
		if err != nil {
			w.m.cfg.Log.Warn("unreadable record of the pod's versions: starting afresh", "pod", w.key, "err", err)
		}
		w.gate, w.gateLoaded = rec, true
	}
	var cur runningView
	if w.known != nil {
		cur = viewOf(w.known, w.published)
	}
	d := gate(w.gate, desired, cur, w.m.clock.Now())
	if !reflect.DeepEqual(d.record, w.gate) {
		if err := w.m.saveGate(w.namespace, w.name, d.record); err != nil {
			w.m.cfg.Log.Warn("record the pod's versions", "pod", w.key, "err", err)
		}
		w.gate = d.record
	}
	if d.event != "" {
		reason, typ := "Updated", v1.EventTypeNormal
		if d.record.Rejected != "" {
			reason, typ = "RolledBack", v1.EventTypeWarning
		}
		w.m.cfg.Log.Info("health-gated update: "+d.event, "pod", w.key)
		w.m.events.Record(w.eventPod(), "", typ, reason, d.event)
	}
	w.rollback = ""
	if desired != nil && d.record.Rejected == desired.UID && d.run != desired {
		w.rollback = fmt.Sprintf("update to version %s rolled back to version %s: %s", desired.UID, d.run.UID, d.record.Reason)
	}
	return d.run, d.wait
}

type passResult struct {
	changed, gone bool
	requeue       time.Duration
}

// pass is one observe → plan → publish → act round.
func (w *worker) pass(ctx context.Context, pod *v1.Pod, cancel context.CancelFunc) (passResult, error) {
	obs, err := w.observe(ctx, pod)
	if err != nil {
		return passResult{}, err
	}
	now := w.m.clock.Now()
	in := planInput{pod: pod, obs: obs, health: w.health(obs, pod), pulls: w.pulls, startErrs: w.startErrs,
		termStart: w.termStart, firstSeen: w.firstSeen, now: now, maxBackoff: w.m.cfg.MaxRestartPeriod, evicted: w.eviction(pod)}
	a := plan(in)
	for _, uid := range a.tearing {
		if _, ok := w.termStart[uid]; !ok {
			w.termStart[uid] = now
		}
	}
	if pod != nil && len(a.tearing) == 0 {
		w.setCancel(cancel)
		defer w.setCancel(nil)
	}
	w.publish(in, a, nil)
	w.m.prober.Sync(w.key, w.probeTargets(pod, obs, a))
	r, err := w.act(ctx, pod, obs, a)
	if pod != nil && a.sandboxID != "" && len(a.tearing) == 0 && !a.finished {
		w.refreshVolumes(ctx, pod)
	}
	if len(r.failed) > 0 {
		w.publish(in, a, r.failed)
	}
	// A removed pod leaves the status cache as soon as its last object
	// is gone: a teardown that succeeded removed them all.
	if a.gone || (pod == nil && err == nil && len(a.tearing) > 0) {
		w.m.status.Delete(w.namespace, w.name)
		w.m.events.Forget(w.namespace, w.name)
	}
	return passResult{changed: r.changed, gone: a.gone, requeue: a.requeue}, err
}

// publish puts the pod's status in the status cache. A pod being removed
// keeps its last status, marked for deletion, until it is gone.
func (w *worker) publish(in planInput, a podActions, failed map[string]v1.ContainerStateWaiting) {
	if in.pod == nil {
		if w.known == nil || a.gone {
			return
		}
		p := w.known.DeepCopy()
		p.Status = *w.published.DeepCopy()
		start := in.now
		if t, ok := w.termStart[p.UID]; ok {
			start = t
		}
		ts := metav1.NewTime(start)
		grace := podGrace(p)
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
		w.m.status.Set(p)
		return
	}
	st := podStatus(in, a, statusFacts{runtime: w.m.runtimeName(), hostIPs: w.m.hostIPs, killed: w.killed, previous: w.published})
	for name, wt := range failed {
		for _, list := range [][]v1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
			for i := range list {
				if list[i].Name == name {
					wt := wt
					list[i].State = v1.ContainerState{Waiting: &wt}
				}
			}
		}
	}
	if w.sandboxErr != "" {
		for i := range st.Conditions {
			if st.Conditions[i].Type == v1.PodReadyToStartContainers {
				st.Conditions[i].Reason, st.Conditions[i].Message = "SandboxCreateFailed", w.sandboxErr
			}
		}
	}
	if w.rollback != "" {
		st.Conditions = append(st.Conditions, v1.PodCondition{Type: conditionRolledBack, Status: v1.ConditionTrue,
			Reason: "UpdateFailed", Message: w.rollback, LastTransitionTime: metav1.NewTime(in.now)})
		for _, c := range w.published.Conditions {
			if c.Type == conditionRolledBack && c.Message == w.rollback {
				st.Conditions[len(st.Conditions)-1].LastTransitionTime = c.LastTransitionTime
			}
		}
	}
	p := in.pod.DeepCopy()
	p.Status = st
	w.m.status.Set(p)
	w.known, w.published = in.pod, st
	w.mu.Lock()
	w.uid = in.pod.UID
	w.mu.Unlock()
}

func (w *worker) eventPod() events.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return events.Pod{Namespace: w.namespace, Name: w.name, UID: w.uid}
}

// health asks the prober about the desired pod's running containers.
func (w *worker) health(obs observation, pod *v1.Pod) map[string]containerHealth {
	if pod == nil {
		return nil
	}
	h := map[string]containerHealth{}
	for _, c := range obs.containersOf(pod.UID) {
		if c.running() {
			h[c.id] = containerHealth{
				startup:   w.m.prober.Result(c.id, probe.Startup),
				liveness:  w.m.prober.Result(c.id, probe.Liveness),
				readiness: w.m.prober.Result(c.id, probe.Readiness),
			}
		}
	}
	return h
}

func (w *worker) probeTargets(pod *v1.Pod, obs observation, a podActions) []probe.Target {
	if pod == nil || len(a.probes) == 0 {
		return nil
	}
	podIP := ""
	for _, s := range obs.sandboxes {
		if s.id == a.sandboxID && len(s.ips) > 0 {
			podIP = s.ips[0]
		}
	}
	if pod.Spec.HostNetwork && len(w.m.hostIPs) > 0 {
		podIP = w.m.hostIPs[0]
	}
	ports := map[string][]v1.ContainerPort{}
	for _, c := range allContainers(pod) {
		ports[c.Name] = c.Ports
	}
	out := make([]probe.Target, 0, len(a.probes))
	for _, p := range a.probes {
		out = append(out, probe.Target{Pod: w.key, PodIP: podIP, ContainerID: p.containerID, Container: p.container,
			Kind: p.kind, Probe: p.probe, Ports: ports[p.container], StartedAt: p.startedAt})
	}
	return out
}

// observe lists the pod's sandboxes and containers, of every UID, once.
// A container's status is read again only when its listed state changed.
func (w *worker) observe(ctx context.Context, pod *v1.Pod) (observation, error) {
	rt := w.m.cfg.Runtime
	sel := map[string]string{labelPodName: w.name, labelPodNamespace: w.namespace, labelManaged: "true"}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return observation{}, fmt.Errorf("list sandboxes: %w", err)
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return observation{}, fmt.Errorf("list containers: %w", err)
	}
	var o observation
	liveSandboxes := map[string]bool{}
	for _, sb := range sbs.GetItems() {
		s := sandboxObs{id: sb.GetId(), uid: types.UID(sb.GetMetadata().GetUid()), attempt: sb.GetMetadata().GetAttempt(),
			ready: sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY, createdAt: nanos(sb.GetCreatedAt()),
			hostIDs: sb.GetAnnotations()[annotationHostIDs]}
		if t, err := time.Parse(time.RFC3339Nano, sb.GetAnnotations()[annotationStartTime]); err == nil {
			s.startTime = t
		}
		liveSandboxes[s.id] = true
		o.sandboxes = append(o.sandboxes, s)
	}
	sort.SliceStable(o.sandboxes, func(i, j int) bool { return o.sandboxes[i].createdAt.After(o.sandboxes[j].createdAt) })
	for i := range o.sandboxes {
		s := &o.sandboxes[i]
		if ips, ok := w.ips[s.id]; ok {
			s.ips = ips
		} else if s.ready || (pod != nil && s.uid == pod.UID && i == 0) {
			if s.ips, err = w.sandboxIPs(ctx, s.id); err != nil {
				return observation{}, err
			}
		}
	}
	live := map[string]bool{}
	for _, c := range cs.GetContainers() {
		live[c.GetId()] = true
		if old, ok := w.seen[c.GetId()]; ok && old.state == c.GetState() {
			o.containers = append(o.containers, old)
			continue
		}
		resp, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
		if err != nil {
			return observation{}, fmt.Errorf("status of container %s: %w", c.GetId(), err)
		}
		obs := containerObsFrom(c, resp.GetStatus())
		if obs.exited() && obs.message == "" {
			obs.message = w.terminationMessage(&obs, c.GetAnnotations()[annotationMessagePolicy])
		}
		w.seen[obs.id] = obs
		o.containers = append(o.containers, obs)
	}
	sort.SliceStable(o.containers, func(i, j int) bool { return o.containers[i].createdAt.After(o.containers[j].createdAt) })
	for id := range w.seen {
		if !live[id] {
			w.forgetContainer(id)
		}
	}
	for id := range w.ips {
		if !liveSandboxes[id] {
			delete(w.ips, id)
		}
	}
	return o, nil
}

func (w *worker) forgetContainer(id string) {
	delete(w.seen, id)
	delete(w.killed, id)
	delete(w.preStopRan, id)
}

// sandboxIPs reads a sandbox's addresses once: they never change.
func (w *worker) sandboxIPs(ctx context.Context, id string) ([]string, error) {
	if ips, ok := w.ips[id]; ok {
		return ips, nil
	}
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
	w.ips[id] = ips
	return ips, nil
}
