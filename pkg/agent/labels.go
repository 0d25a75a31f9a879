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
	// annotationBackoffStep counts the quick failures before this attempt:
	// the delay before the next restart is 10 s doubled per step, and a run
	// longer than backoffReset starts again at step 0. Kept on the container
	// so a restarted agent resumes the back-off where it was.
	annotationBackoffStep = "berth.io/backoff-step"
	// labelManaged marks sandboxes the agent created; it never touches
	// others (crictl's, another client's).
	labelManaged = "berth.io/managed"
)
