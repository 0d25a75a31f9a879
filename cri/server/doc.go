// Package server is berth's CRI v1 endpoint: RuntimeService and
// ImageService over gRPC, one file per verb (<object>_<verb>.go).
//
// Handlers validate their request first, then work through the records
// (cri/store), the spec builder (cri/oci), the image store, the network
// (cri/network) and the per-pod shims (cri/shim) with runc (cri/runc).
// Errors inside are classified with cri/errdefs; errors.go maps them to
// gRPC codes in one place. No lock is held across a runc, shim or CNI call.
//
// Lifecycle changes are published to GetContainerEvents subscribers
// (events.go) by the handlers that make them; exits nobody asked for are
// noticed by one goroutine per running process blocked in its shim's Wait
// (exits.go), started by StartContainer, RunPodSandbox and Run.
//
// The code tour: sandbox_run.go, container_create.go and container_start.go
// show how a pod comes up; recover.go shows what happens after a crash.
package server
