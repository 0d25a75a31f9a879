package agent

import (
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// observation is everything one pass knows of a pod's objects in the
// runtime: its sandboxes and containers of every UID the pod's name had,
// newest first. It is read once per pass and not changed by the plan.
type observation struct {
	sandboxes  []sandboxObs
	containers []containerObs
}

// sandboxObs is one pod sandbox as the runtime reports it.
type sandboxObs struct {
	id        string
	uid       types.UID
	attempt   uint32
	ready     bool
	createdAt time.Time
	// ips are the sandbox's addresses, read for the newest ready sandbox
	// of the desired UID only.
	ips []string
	// startTime is when the pod first started, carried from sandbox to
	// sandbox so that a pod's age survives sandbox recreation and restarts
	// of the agent; zero if the sandbox does not say.
	startTime time.Time
	// hostIDs is the first host ID of the sandbox's user namespace, as
	// its annotation records it; "" for one with the host's users.
	hostIDs string
}

// containerObs is one container instance: its CRI status and what the
// agent recorded on it when it created it.
type containerObs struct {
	id, name, sandboxID string
	uid                 types.UID
	attempt             uint32
	state               runtimeapi.ContainerState
	exitCode            int32
	reason, message     string
	createdAt           time.Time
	startedAt           time.Time
	finishedAt          time.Time
	imageRef            string
	// From the annotations the agent set at creation.
	hash        string
	backoffStep int
	grace       int64 // the pod's grace period when it was created
	kind        containerKind
	order       int // position among the pod's init and app containers
	preStop     string
}

func (c *containerObs) running() bool {
	return c.state == runtimeapi.ContainerState_CONTAINER_RUNNING
}

func (c *containerObs) exited() bool {
	return c.state == runtimeapi.ContainerState_CONTAINER_EXITED || c.state == runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// containerKind says which of the pod's lists a container came from;
// teardown orders kills by it without needing the pod's spec.
type containerKind string

const (
	kindApp     containerKind = "app"
	kindInit    containerKind = "init"
	kindSidecar containerKind = "sidecar"
)

// containerObsFrom reads a container's status and the agent's annotations.
func containerObsFrom(c *runtimeapi.Container, st *runtimeapi.ContainerStatus) containerObs {
	ann := c.GetAnnotations()
	step, _ := strconv.Atoi(ann[annotationBackoffStep])
	grace, err := strconv.ParseInt(ann[annotationGracePeriod], 10, 64)
	if err != nil {
		grace = defaultGrace
	}
	order, _ := strconv.Atoi(ann[annotationOrder])
	kind := containerKind(ann[annotationKind])
	if kind == "" {
		kind = kindApp
	}
	o := containerObs{
		id: c.GetId(), name: c.GetMetadata().GetName(), sandboxID: c.GetPodSandboxId(),
		uid: types.UID(c.GetLabels()[labelPodUID]), attempt: c.GetMetadata().GetAttempt(),
		state: c.GetState(), createdAt: nanos(c.GetCreatedAt()), imageRef: c.GetImageRef(),
		hash: ann[annotationContainerHash], backoffStep: step, grace: grace, kind: kind, order: order,
		preStop: ann[annotationPreStop],
	}
	if st != nil {
		o.state = st.GetState()
		o.exitCode, o.reason, o.message = st.GetExitCode(), st.GetReason(), st.GetMessage()
		o.startedAt, o.finishedAt = nanos(st.GetStartedAt()), nanos(st.GetFinishedAt())
		if st.GetImageRef() != "" {
			o.imageRef = st.GetImageRef()
		}
	}
	return o
}

func nanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Helpers over an observation.

func (o *observation) sandboxesOf(uid types.UID) []*sandboxObs {
	var out []*sandboxObs
	for i := range o.sandboxes {
		if o.sandboxes[i].uid == uid {
			out = append(out, &o.sandboxes[i])
		}
	}
	return out
}

func (o *observation) containersOf(uid types.UID) []*containerObs {
	var out []*containerObs
	for i := range o.containers {
		if o.containers[i].uid == uid {
			out = append(out, &o.containers[i])
		}
	}
	return out
}

// uids lists the pod UIDs the objects belong to, in the order first seen.
func (o *observation) uids() []types.UID {
	seen := map[types.UID]bool{}
	var out []types.UID
	add := func(u types.UID) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, s := range o.sandboxes {
		add(s.uid)
	}
	for _, c := range o.containers {
		add(c.uid)
	}
	return out
}

// instances lists the instances of one container of a UID, newest first.
func instances(cs []*containerObs, name string) []*containerObs {
	var out []*containerObs
	for _, c := range cs {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// latestIn is the newest instance in the sandbox.
func latestIn(cs []*containerObs, sandboxID string) *containerObs {
	for _, c := range cs {
		if c.sandboxID == sandboxID {
			return c
		}
	}
	return nil
}
