// Package kubeletapi serves kubelet's HTTPS API (port 10250) for a berth
// node in a Kubernetes cluster, so that `kubectl logs -f`, `kubectl exec
// -it`, `kubectl port-forward` and stats readers work for its pods through
// the API server, as they do for a kubelet's.
//
// Every request is authenticated and authorized as kubelet's webhook modes
// do it (auth.go, authz.go): a client certificate signed by the client CA,
// or a bearer token the API server vouches for (TokenReview); then a
// SubjectAccessReview of verb on nodes/<node>/<subresource>, the
// subresource named by the path (attributes.go). Anonymous requests are
// refused. Both reviews are cached with kubelet's default lifetimes.
//
// The endpoints:
//
//	/healthz                                        ok
//	/pods                                           the node's pods (v1.PodList) from the agent's status cache
//	/containerLogs/{ns}/{pod}/{container}           CRI log files, read as kubelet reads them (logs.go)
//	/exec|/attach/{ns}/{pod}[/{uid}]/{container}    proxied to the runtime's streaming URL (streams.go)
//	/portForward/{ns}/{pod}[/{uid}]                 the same
//	/run/{ns}/{pod}[/{uid}]/{container}             ExecSync of the cmd form value
//	/stats/summary                                  kubelet's stats/v1alpha1 Summary (summary.go, node.go)
//	/metrics, /metrics/probes                       berth's own registries
//	/metrics/cadvisor                               the runtime's cAdvisor-named metrics (metrics.go)
//
// The package reaches the runtime through the CRI only, in the small role
// interfaces each file declares, and the pods through their status; it
// knows nothing of berth's agent or runtime.
package kubeletapi
