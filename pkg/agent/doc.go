// Package agent runs pods, kubelet-style, through the CRI API only, so it
// drives berth's own runtime and containerd alike.
//
// One worker per pod name makes passes of observe → plan → act:
//
//   - observe (worker.go) lists the pod's sandboxes and containers once;
//   - plan (plan.go) is a pure function from the desired pod, that
//     observation, the prober's results and the time to podActions: which
//     containers to kill (in stages), which sandbox to create or stop, which
//     containers to start, what to garbage collect; podStatus (status.go) is
//     the pod's status from the same input, also pure; both are table-tested;
//   - the status is published to the status cache before act (act.go)
//     carries the actions out.
//
// Keyed by name, a worker runs one version (UID) of a pod at a time: a new
// version starts once the previous one is gone. gate.go decides, for pods
// that opt in, whether a new version is kept or rolled back.
//
// Everything a restarted agent needs lives in the runtime: sandboxes and
// containers carry kubelet's labels (pod name, namespace, UID, container
// name) and annotations (spec hash, restart count, back-off step, grace
// period, preStop handler, container kind and order, the pod's start time),
// so a restarted agent finds its pods and their history there.
package agent
