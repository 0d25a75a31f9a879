// Package probe runs containers' startup, liveness and readiness probes
// (exec, httpGet, tcpSocket, grpc) with kubelet's semantics, and holds
// their results for the pod workers.
//
// One scheduler goroutine keeps every probe in a heap ordered by its next
// run; a probe runs in a goroutine of its own only while it is in flight,
// and at most MaxInFlight run at once, so thousands of probes cost no more
// than the ones that are due. After a restart of the agent, first runs of
// containers that were already running are spread over their period.
//
// The handlers (Exec, HTTPGet, TCP, GRPC) are also what lifecycle hooks run.
package probe
