// Package agent runs pods: one worker per pod compares the pod's spec with
// what the container runtime reports and acts, kubelet-style: it creates
// the sandbox, pulls images per imagePullPolicy, starts containers, restarts
// them per restartPolicy with back-off, and tears the pod down when it is
// removed. It talks to the runtime only through the CRI API, so it drives
// berth's own runtime and containerd alike.
//
// Everything it needs to resume after a restart lives in the runtime:
// sandboxes and containers carry kubelet's labels (pod name, namespace,
// UID, container name) and annotations (spec hash, restart count, back-off
// step), so a restarted agent finds its pods and their history there.
package agent
