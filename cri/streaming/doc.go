// Package streaming serves the CRI's streaming sessions (exec, attach,
// port forward) over HTTP, with the streaming server kubelet and containerd
// use (k8s.io/cri-streaming): the Exec, Attach and PortForward RPCs only
// hand out a one-time URL on this server; a client (kubelet, crictl,
// kubectl through the API server) then upgrades a request to that URL to
// SPDY or WebSocket streams, and the server calls back into a Runtime with
// the streams.
//
// The Runtime is implemented where containers are known (cri/server); this
// package adds the wiring, and the part of port forwarding that needs no
// container: reaching a port on the loopback of a pod's network namespace.
package streaming
