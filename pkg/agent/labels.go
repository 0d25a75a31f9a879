package agent

// Labels and annotations on CRI objects, kubelet's where kubelet has one so
// that crictl users see what they know.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"

	annotationContainerHash = "io.kubernetes.container.hash"
	annotationRestartCount  = "io.kubernetes.container.restartCount"
	annotationGracePeriod   = "io.kubernetes.pod.terminationGracePeriod"
	// annotationPreStop is the container's preStop handler as JSON, as
	// kubelet records it, so that a pod can be stopped properly by an agent
	// that no longer has its spec (restarted after the manifest went).
	annotationPreStop = "io.kubernetes.container.preStopHandler"
	// annotationMessagePolicy is the container's terminationMessagePolicy,
	// read when it has exited.
	annotationMessagePolicy = "io.kubernetes.container.terminationMessagePolicy"
	// annotationBackoffStep counts the quick failures before this attempt:
	// the delay before the next restart is 10 s doubled per step, and a run
	// longer than backoffReset starts again at step 0. Kept on the container
	// so a restarted agent resumes the back-off where it was.
	annotationBackoffStep = "berth.io/backoff-step"
	// annotationKind and annotationOrder say where the container stands in
	// its pod (init, sidecar or app; its index among init then app
	// containers), so teardown stops sidecars last, in reverse order,
	// without the pod's spec.
	annotationKind  = "berth.io/container-kind"
	annotationOrder = "berth.io/container-order"
	// annotationStartTime on a sandbox is the pod's start time (RFC 3339),
	// carried from sandbox to sandbox.
	annotationStartTime = "berth.io/pod-start-time"
	// labelManaged marks sandboxes the agent created; it never touches
	// others (crictl's, another client's).
	labelManaged = "berth.io/managed"
)

// defaultGrace is the pod's termination grace period when it sets none.
const defaultGrace = 30
