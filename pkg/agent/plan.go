package agent

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-project/berth/pkg/probe"
)

// planInput is everything plan decides from. The worker gathers it; plan
// only reads it.
type planInput struct {
	// pod is the desired pod; nil once it is to be removed.
	pod *v1.Pod
	obs observation
	// health is the prober's verdict on each running container, by ID.
	health map[string]containerHealth
	// pulls are the images whose last pull failed, by image.
	pulls map[string]pullFailure
	// startErrs are containers whose last create or start failed, by name.
	startErrs map[string]startFailure
	// termStart is when the teardown of each UID began; a UID missing here
	// begins now.
	termStart map[types.UID]time.Time
	// firstSeen is when the agent was first given the pod: its start time
	// until a sandbox records one.
	firstSeen time.Time
	now       time.Time
	// maxBackoff caps the restart back-off; 0 means backoffMax.
	maxBackoff time.Duration
	// evicted is set once the pod's version was evicted.
	evicted *evictionRecord
}

// containerHealth is what the probes of one container concluded.
type containerHealth struct {
	startup, liveness, readiness probe.Result
}

type pullFailure struct {
	failures int
	last     time.Time
	err      string
}

type startFailure struct {
	at              time.Time
	reason, message string
}

// podActions is what one pass does, in this order: the kills, stage by
// stage (the kills of a stage run together, a stage begins when the one
// before it has ended); then the sandbox stops, container and sandbox
// removals and the cleanup of UIDs with nothing left; then the new sandbox,
// if any, and the container starts in order. The rest describes the pod for
// its status.
type podActions struct {
	kills            [][]containerKill
	stopSandboxes    []string
	removeContainers []string
	removeSandboxes  []string
	// cleanup are UIDs whose pod-side state (logs, volumes, pod cgroup)
	// goes once their objects are removed.
	cleanup []types.UID
	// tearing are the UIDs being torn down (the worker records when each
	// began, for the grace period).
	tearing       []types.UID
	createSandbox *sandboxCreate
	start         []containerStart
	// probes are the probes that should run now; the prober stops others.
	probes []probeWant

	// sandboxID is the sandbox the pod's containers are in: the ready one,
	// the last one of a finished pod, or "" for the one being created.
	sandboxID string
	// waiting says why a container is not running, by name.
	waiting  map[string]v1.ContainerStateWaiting
	initDone bool
	// finished: the pod completed and none of its containers restarts.
	finished bool
	// gone: nothing of the pod is left in the runtime and none is wanted.
	gone bool
	// evicted: the pod was evicted; releaseVolumes: its volumes go now
	// that nothing of it runs.
	evicted, releaseVolumes bool
	// requeue is when the pod wants another pass (a back-off ending); 0 is
	// never, beyond the worker's periodic resync.
	requeue time.Duration
}

type containerKill struct {
	id, name string
	// grace is the time left for preStop and the stop signal, in seconds.
	grace int64
	// preStop is the handler to run first, as recorded on the container.
	preStop string
	// reason and message say why, for the log, the event and the
	// container's last state.
	reason, message string
}

type sandboxCreate struct {
	attempt   uint32
	startTime time.Time
}

type containerStart struct {
	container *v1.Container
	kind      containerKind
	order     int
	attempt   uint32
	step      int
}

type probeWant struct {
	containerID, container string
	kind                   probe.Kind
	probe                  *v1.Probe
	startedAt              time.Time
}

// Reasons for kills, as kubelet words them in its events.
const (
	reasonKilling   = "Killing"
	reasonUnhealthy = "Unhealthy"
)

// plan decides one pass over a pod. It does no I/O, reads no clock and
// takes no locks: the same input gives the same actions.
func plan(in planInput) podActions {
	a := podActions{waiting: map[string]v1.ContainerStateWaiting{}}
	var want types.UID
	if in.pod != nil {
		want = in.pod.UID
	}
	for _, uid := range in.obs.uids() {
		if uid != want {
			a.teardown(in, uid, nil)
		}
	}
	if in.pod == nil {
		a.gone = len(in.obs.sandboxes) == 0 && len(in.obs.containers) == 0
		return a
	}
	if in.pod.DeletionTimestamp != nil {
		// Deleted upstream: it goes within the deletion's grace period
		// and stays desired, its status reported, until all of it is
		// gone; then Config.Terminated lets the upstream finish.
		a.teardown(in, in.pod.UID, in.pod.DeletionGracePeriodSeconds)
		return a
	}
	if len(a.tearing) > 0 {
		// The pod's previous version goes first: both may want the same
		// host ports, names and volumes.
		for _, c := range allContainers(in.pod) {
			a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		return a
	}
	if in.evicted != nil {
		a.evict(in)
		return a
	}
	a.syncPod(in)
	return a
}

// evict stops an evicted pod for good: its containers are killed within
// the eviction's grace period (app containers together, then sidecars,
// the last first), its sandbox stops, and once nothing runs its volumes
// go (an emptyDir that filled the disk is what must be freed). Nothing
// restarts; the pod keeps its containers for its status and logs.
func (a *podActions) evict(in planInput) {
	pod := in.pod
	sbs := in.obs.sandboxesOf(pod.UID)
	cs := in.obs.containersOf(pod.UID)
	a.finished, a.evicted = true, true
	if len(sbs) > 0 {
		a.sandboxID = sbs[0].id
		a.initDone = initSucceeded(pod, cs, sbs[0].id)
	}
	left := max(in.evicted.Grace-int64(in.now.Sub(in.evicted.At)/time.Second), 0)
	var apps []containerKill
	var sidecars []*containerObs
	for _, c := range cs {
		switch {
		case c.exited():
		case c.kind == kindSidecar:
			sidecars = append(sidecars, c)
		default:
			apps = append(apps, killFor(c, left, reasonKilling, "Stopping container "+c.name))
		}
	}
	if len(apps) > 0 {
		a.kills = append(a.kills, apps)
	}
	sortByOrderDesc(sidecars)
	for _, c := range sidecars {
		a.kills = append(a.kills, []containerKill{killFor(c, left, reasonKilling, "Stopping container "+c.name)})
	}
	for _, s := range sbs {
		if s.ready {
			a.stopSandboxes = append(a.stopSandboxes, s.id)
		}
	}
	a.releaseVolumes = len(a.kills) == 0 && len(a.stopSandboxes) == 0
	for _, c := range pod.Spec.InitContainers {
		delete(a.waiting, c.Name)
	}
	a.gc(cs, sbs)
}

func (a *podActions) wakeIn(d time.Duration) {
	if d > 0 && (a.requeue == 0 || d < a.requeue) {
		a.requeue = d
	}
}

// teardown removes everything of uid: app containers are stopped first,
// then sidecars one at a time in reverse order, all within what is left of
// the grace period since the teardown began (each container's own, or
// grace when set); then the sandboxes go.
func (a *podActions) teardown(in planInput, uid types.UID, grace *int64) {
	a.tearing = append(a.tearing, uid)
	start, ok := in.termStart[uid]
	if !ok {
		start = in.now
	}
	elapsed := int64(in.now.Sub(start) / time.Second)
	left := func(c *containerObs) int64 {
		g := c.grace
		if grace != nil {
			g = *grace
		}
		return max(g-elapsed, 0)
	}
	var apps []containerKill
	var sidecars []*containerObs
	for _, c := range in.obs.containersOf(uid) {
		if c.exited() {
			a.removeContainers = append(a.removeContainers, c.id)
			continue
		}
		if c.kind == kindSidecar {
			sidecars = append(sidecars, c)
		} else {
			apps = append(apps, killFor(c, left(c), reasonKilling, "Stopping container "+c.name))
		}
		a.removeContainers = append(a.removeContainers, c.id)
	}
	if len(apps) > 0 {
		a.kills = append(a.kills, apps)
	}
	sortByOrderDesc(sidecars)
	for _, c := range sidecars {
		a.kills = append(a.kills, []containerKill{killFor(c, left(c), reasonKilling, "Stopping container "+c.name)})
	}
	for _, s := range in.obs.sandboxesOf(uid) {
		if s.ready {
			a.stopSandboxes = append(a.stopSandboxes, s.id)
		}
		a.removeSandboxes = append(a.removeSandboxes, s.id)
	}
	a.cleanup = append(a.cleanup, uid)
}

func killFor(c *containerObs, grace int64, reason, msg string) containerKill {
	k := containerKill{id: c.id, name: c.name, grace: grace, reason: reason, message: msg}
	if c.running() {
		k.preStop = c.preStop // a container that never started has nothing to stop gracefully
	}
	return k
}

func sortByOrderDesc(cs []*containerObs) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].order > cs[j-1].order; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// syncPod plans the desired pod: its sandbox, then its init containers and
// sidecars in order, then its app containers.
func (a *podActions) syncPod(in planInput) {
	pod := in.pod
	grace := podGrace(pod)
	sbs := in.obs.sandboxesOf(pod.UID)
	cs := in.obs.containersOf(pod.UID)
	var sb *sandboxObs
	if len(sbs) > 0 && sbs[0].ready {
		sb = sbs[0]
	}
	// Only the newest sandbox may run (a crash between creating a new one
	// and stopping the old leaves two).
	for _, s := range sbs {
		if s != sb && s.ready {
			a.killAllIn(cs, s.id, grace, "Stopping container of an old sandbox")
			a.stopSandboxes = append(a.stopSandboxes, s.id)
		}
	}
	if sb == nil {
		if len(sbs) > 0 && finishedWithoutSandbox(pod, cs, sbs[0].id) {
			// Nothing restarts: the pod keeps its last sandbox's containers
			// (for their logs and status) but no sandbox.
			a.sandboxID, a.finished = sbs[0].id, true
			a.initDone = initSucceeded(pod, cs, sbs[0].id)
			for _, s := range sbs {
				a.killAllIn(cs, s.id, grace, "Stopping container of a dead sandbox")
			}
			a.gc(cs, sbs)
			return
		}
		// A dead sandbox takes its containers with it: what still runs
		// there is stopped, and the pod starts again in a new sandbox.
		create := &sandboxCreate{startTime: in.firstSeen}
		for _, s := range sbs {
			a.killAllIn(cs, s.id, grace, "Stopping container of a dead sandbox")
		}
		if len(sbs) > 0 {
			create.attempt = sbs[0].attempt + 1
			if !sbs[0].startTime.IsZero() {
				create.startTime = sbs[0].startTime
			}
		}
		a.createSandbox = create
	} else {
		a.sandboxID = sb.id
	}
	if a.syncInit(in, cs) {
		a.initDone = true
		allDone := true
		for i := range pod.Spec.Containers {
			if !a.syncApp(in, &pod.Spec.Containers[i], len(pod.Spec.InitContainers)+i, cs) {
				allDone = false
			}
		}
		if allDone && pod.Spec.RestartPolicy != v1.RestartPolicyAlways {
			a.complete(in, cs)
		}
	}
	a.gc(cs, sbs)
}

// complete ends a pod whose containers are done: its sidecars stop, last
// first, and it gives up its sandbox.
func (a *podActions) complete(in planInput, cs []*containerObs) {
	a.finished = true
	a.start = nil
	var sidecars []*containerObs
	for _, c := range cs {
		if c.sandboxID == a.sandboxID && !c.exited() {
			sidecars = append(sidecars, c)
		}
	}
	sortByOrderDesc(sidecars)
	for _, c := range sidecars {
		if !a.killing(c.id) {
			a.kills = append(a.kills, []containerKill{killFor(c, podGrace(in.pod), reasonKilling, "Stopping container "+c.name)})
		}
	}
	for _, c := range in.pod.Spec.InitContainers {
		delete(a.waiting, c.Name)
	}
	if a.sandboxID != "" {
		a.stopSandboxes = append(a.stopSandboxes, a.sandboxID)
	}
}

func (a *podActions) killing(id string) bool {
	for _, stage := range a.kills {
		for _, k := range stage {
			if k.id == id {
				return true
			}
		}
	}
	return false
}

func (a *podActions) killAllIn(cs []*containerObs, sandboxID string, grace int64, msg string) {
	var stage []containerKill
	for _, c := range cs {
		if c.sandboxID == sandboxID && !c.exited() {
			stage = append(stage, killFor(c, min(grace, c.grace), reasonKilling, msg))
		}
	}
	if len(stage) > 0 {
		a.kills = append(a.kills, stage)
	}
}

// syncInit runs the init containers one at a time, in order, each to
// success before the next; a sidecar (an init container with restartPolicy
// Always) counts as done once it has started, and is kept running for the
// whole life of the pod. True once the app containers may run.
func (a *podActions) syncInit(in planInput, cs []*containerObs) bool {
	pod := in.pod
	// Once an app container was created in this sandbox, initialisation is
	// over: plain init containers are not run again.
	initialised := false
	for _, c := range pod.Spec.Containers {
		if a.sandboxID != "" && latestIn(instances(cs, c.Name), a.sandboxID) != nil {
			initialised = true
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		insts := instances(cs, c.Name)
		cur := latestIn(insts, a.sandboxID)
		if a.sandboxID == "" {
			cur = nil
		}
		if isSidecar(c) {
			if cur != nil && cur.running() {
				a.keepRunning(in, c, cur)
				if !initialised && !started(c, cur, in.health) {
					return false
				}
				continue
			}
			if !a.restart(in, c, kindSidecar, i, insts, cur) {
				continue // won't restart; it has finished for good
			}
			if !initialised {
				return false
			}
			continue
		}
		if initialised {
			continue
		}
		switch {
		case cur == nil:
		case cur.running():
			return false
		case cur.exited() && cur.exitCode == 0:
			continue
		case cur.exited() && pod.Spec.RestartPolicy == v1.RestartPolicyNever:
			a.complete(in, cs) // the pod has failed
			return false
		}
		a.restart(in, c, kindInit, i, insts, cur)
		return false
	}
	return true
}

// syncApp keeps one app container running per the restart policy; true
// when it is done for good.
func (a *podActions) syncApp(in planInput, c *v1.Container, order int, cs []*containerObs) bool {
	insts := instances(cs, c.Name)
	var cur *containerObs
	if a.sandboxID != "" {
		cur = latestIn(insts, a.sandboxID)
	}
	if cur != nil && cur.running() {
		a.keepRunning(in, c, cur)
		return false
	}
	return !a.restart(in, c, kindApp, order, insts, cur)
}

// keepRunning watches a running container: it is replaced when its spec
// changed and killed when a liveness or startup probe failed; otherwise its
// probes run.
func (a *podActions) keepRunning(in planInput, c *v1.Container, cur *containerObs) {
	grace := podGrace(in.pod)
	h := in.health[cur.id]
	switch {
	case cur.hash != containerHash(c):
		a.kills = append(a.kills, []containerKill{killFor(cur, grace, reasonKilling,
			fmt.Sprintf("Container %s definition changed, will be restarted", c.Name))})
		return
	case c.StartupProbe != nil && h.startup == probe.Failure:
		a.kills = append(a.kills, []containerKill{killFor(cur, probeGrace(c.StartupProbe, grace), reasonUnhealthy,
			fmt.Sprintf("Container %s failed startup probe, will be restarted", c.Name))})
		return
	case c.LivenessProbe != nil && h.liveness == probe.Failure:
		a.kills = append(a.kills, []containerKill{killFor(cur, probeGrace(c.LivenessProbe, grace), reasonUnhealthy,
			fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name))})
		return
	}
	want := func(k probe.Kind, p *v1.Probe) {
		a.probes = append(a.probes, probeWant{containerID: cur.id, container: c.Name, kind: k, probe: p, startedAt: cur.startedAt})
	}
	if c.StartupProbe != nil {
		// Kept while the container runs: the prober holds its success.
		want(probe.Startup, c.StartupProbe)
		if h.startup != probe.Success {
			return // liveness and readiness wait for it
		}
	}
	if c.LivenessProbe != nil {
		want(probe.Liveness, c.LivenessProbe)
	}
	if c.ReadinessProbe != nil {
		want(probe.Readiness, c.ReadinessProbe)
	}
}

// restart starts the next instance of a container that is not running,
// unless its restart policy says it is done (false) or back-off says wait.
func (a *podActions) restart(in planInput, c *v1.Container, kind containerKind, order int, insts []*containerObs, cur *containerObs) bool {
	if cur != nil && !cur.exited() {
		// Created but never started (the agent stopped in between): it
		// goes, and a new instance numbered after it starts now. The
		// number names the log file, which the old one may have written
		// to if its start was under way as berthd stopped.
		a.removeContainers = append(a.removeContainers, cur.id)
		a.start = append(a.start, containerStart{container: c, kind: kind, order: order, attempt: insts[0].attempt + 1, step: cur.backoffStep})
		a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "ContainerCreating"}
		return true
	}
	changed := cur != nil && cur.hash != containerHash(c)
	if cur != nil && !changed && kind != kindSidecar && !shouldRestart(in.pod.Spec.RestartPolicy, cur.exitCode) {
		return false
	}
	attempt, step := uint32(0), 0
	if len(insts) > 0 {
		attempt = insts[0].attempt + 1
	}
	if cur != nil && !changed {
		ran := time.Duration(0)
		if !cur.startedAt.IsZero() && !cur.finishedAt.IsZero() {
			ran = cur.finishedAt.Sub(cur.startedAt)
		}
		finished := cur.finishedAt
		if finished.IsZero() { // it failed when created
			finished = cur.createdAt
		}
		step = nextBackoffStep(cur.backoffStep, ran)
		if wait := finished.Add(backoffDelay(step, in.maxBackoff)).Sub(in.now); wait > 0 {
			a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					backoffDelay(step, in.maxBackoff), c.Name, in.pod.Name, in.pod.Namespace, in.pod.UID)}
			a.wakeIn(wait)
			return true
		}
	}
	if f, ok := in.startErrs[c.Name]; ok {
		if wait := f.at.Add(backoffBase).Sub(in.now); wait > 0 {
			a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: f.reason, Message: f.message}
			a.wakeIn(wait)
			return true
		}
	}
	if f, ok := in.pulls[c.Image]; ok {
		if wait := f.last.Add(pullDelay(f.failures)).Sub(in.now); wait > 0 {
			a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "ImagePullBackOff",
				Message: fmt.Sprintf("Back-off pulling image %q: %s", c.Image, f.err)}
			a.wakeIn(wait)
			return true
		}
	}
	a.start = append(a.start, containerStart{container: c, kind: kind, order: order, attempt: attempt, step: step})
	a.waiting[c.Name] = v1.ContainerStateWaiting{Reason: "ContainerCreating"}
	return true
}

// gc removes exited containers but the newest two of each name (the
// current and the previous, for `crictl logs --previous` and lastState), and
// the sandboxes no kept container needs.
func (a *podActions) gc(cs []*containerObs, sbs []*sandboxObs) {
	keep := map[string]bool{a.sandboxID: true}
	if len(sbs) > 0 {
		keep[sbs[0].id] = true
	}
	removing := map[string]bool{}
	for _, id := range a.removeContainers {
		removing[id] = true
	}
	seen := map[string]int{}
	for _, c := range cs {
		seen[c.name]++
		if removing[c.id] {
			continue
		}
		if seen[c.name] <= 2 || !c.exited() {
			keep[c.sandboxID] = true
			continue
		}
		a.removeContainers = append(a.removeContainers, c.id)
	}
	for _, s := range sbs {
		if !keep[s.id] && !s.ready {
			a.removeSandboxes = append(a.removeSandboxes, s.id)
		}
	}
}

// finishedWithoutSandbox: a pod whose sandbox died is not recreated when
// nothing in it would restart: restartPolicy Never once its containers
// ran, OnFailure once they all succeeded.
func finishedWithoutSandbox(pod *v1.Pod, cs []*containerObs, sandboxID string) bool {
	ran := false
	for _, c := range cs {
		if c.sandboxID == sandboxID {
			ran = true
		}
	}
	switch pod.Spec.RestartPolicy {
	case v1.RestartPolicyNever:
		return ran
	case v1.RestartPolicyOnFailure:
		if !ran {
			return false
		}
		for _, c := range pod.Spec.Containers {
			cur := latestIn(instances(cs, c.Name), sandboxID)
			if cur == nil || !cur.exited() || cur.exitCode != 0 {
				return false
			}
		}
		return true
	}
	return false
}

// initSucceeded: every plain init container's latest instance in the
// sandbox exited 0.
func initSucceeded(pod *v1.Pod, cs []*containerObs, sandboxID string) bool {
	for _, c := range pod.Spec.InitContainers {
		if isSidecar(&c) {
			continue
		}
		cur := latestIn(instances(cs, c.Name), sandboxID)
		if cur == nil || !cur.exited() || cur.exitCode != 0 {
			return false
		}
	}
	return true
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

// isSidecar: an init container with restartPolicy Always runs for the
// whole life of the pod.
func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// started: running, and its startup probe (if any) has succeeded.
func started(c *v1.Container, cur *containerObs, health map[string]containerHealth) bool {
	if cur == nil || !cur.running() {
		return false
	}
	return c.StartupProbe == nil || health[cur.id].startup == probe.Success
}

// ready: started, and its readiness probe (if any) says so.
func ready(c *v1.Container, cur *containerObs, health map[string]containerHealth) bool {
	if !started(c, cur, health) {
		return false
	}
	return c.ReadinessProbe == nil || health[cur.id].readiness == probe.Success
}

func podGrace(pod *v1.Pod) int64 {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return defaultGrace
}

// probeGrace is the grace period of a kill a probe asked for: the probe's
// own when it sets one.
func probeGrace(p *v1.Probe, pod int64) int64 {
	if p.TerminationGracePeriodSeconds != nil {
		return *p.TerminationGracePeriodSeconds
	}
	return pod
}

func pullDelay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	return min(backoffBase<<(failures-1), backoffMax)
}
