// Package upstream is the boundary between berth's agent and a control
// plane: the interface a plugin implements to supply this node's pods.
// berth merges what a plugin supplies with the static pod manifests (see
// package source) and runs both through the same pod workers, which do not
// know where a pod came from.
//
// # The contract
//
// A plugin's Run is called once, in its own goroutine, and blocks until
// its context ends; it returns nil then. An error return means the
// plugin cannot work at all (bad configuration it could not see before
// Run); berthd logs it and keeps running the pods the plugin last
// supplied, without the plugin.
//
// The plugin tells its Sink two things, from any goroutine, never
// concurrently with itself:
//
//   - Pods(pods) hands over the complete set of pods this node should run
//     from the control plane, each time it changes. It replaces the
//     previous set; it is not a delta. Calls are cheap and idempotent: an
//     unchanged pod is left alone, so a plugin may hand over its whole set
//     on every poll. Until the first call the plugin's pods are unknown,
//     and berth tears down none of the pods it ran from this plugin before
//     a restart (it starts them again from its journal, below).
//   - Connected(err) says whether the control plane is reachable: nil
//     when it is, the reason when it is not. It changes nothing that
//     runs: while disconnected the plugin simply does not call Pods, and
//     its last set keeps running. An outage must never be reported as an
//     empty set, which would tear every pod down.
//
// A pod handed over must be a valid, defaulted v1.Pod with a UID, and a
// namespace/name that is unique within the set. A changed spec is a new
// version of the pod only when its UID or spec changes. Pods that a
// manifest file already defines under the same namespace/name are refused
// (the file's pod keeps running) and the refusal is logged and shown by
// the local API; the same holds the other way round.
//
// berth keeps the last set a plugin handed over in a journal on disk
// (root-only), so that after a restart of berthd or a reboot with the
// control plane unreachable the plugin's pods start again at once. A
// plugin may therefore assume that while it is disconnected the node
// goes on running what it last said, for as long as it takes.
//
// Optional capabilities are separate small interfaces a plugin may also
// implement; berthd calls them once, before Run:
//
//   - StatusReporter: the plugin reads the agent's pod statuses (the one
//     status cache, with change notification) to report them upstream.
//   - TerminationObserver: the plugin learns when everything of a pod's
//     version is gone from the node, which graceful deletion needs: a pod
//     deleted upstream (deletionTimestamp set) stays in the plugin's set,
//     and berth terminates it within its deletionGracePeriodSeconds
//     (preStop first) and reports it terminated; only then does the plugin
//     drop it (and, for Kubernetes, delete it with grace 0).
package upstream

import (
	"context"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Plugin supplies this node's desired pods from a control plane.
type Plugin interface {
	// Name is the plugin's name in configuration, logs and the journal:
	// "url", "kubernetes".
	Name() string
	// Run feeds sink until ctx ends.
	Run(ctx context.Context, sink Sink) error
}

// Sink is what a plugin tells berth.
type Sink interface {
	// Pods replaces the plugin's complete set of desired pods.
	Pods(pods []*v1.Pod)
	// Connected reports the control plane reachable (nil) or not (why).
	Connected(err error)
}

// PodStatuses is the agent's status cache as a plugin reads it: List, then
// wait on Changed, and no change is missed.
type PodStatuses interface {
	List() ([]v1.Pod, uint64)
	Changed() (<-chan struct{}, uint64)
}

// StatusReporter is a plugin that reports pod statuses upstream.
type StatusReporter interface {
	ReportStatuses(PodStatuses)
}

// TerminationObserver is a plugin told when a pod's version is gone from
// the node. PodTerminated must not block; it may be called more than once
// for the same version.
type TerminationObserver interface {
	PodTerminated(namespace, name string, uid types.UID)
}

// File is one file of a volume: a path relative to the volume, its
// content and mode (0: the volume's default mode).
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// VolumeSource is a plugin that supplies volume content. src is one
// source of a projected volume, or a configMap or secret volume turned into
// one. ServiceAccountToken, ConfigMap and Secret sources are asked for;
// downwardAPI is berth's own.
type VolumeSource interface {
	VolumeFiles(ctx context.Context, pod *v1.Pod, src v1.VolumeProjection) ([]File, error)
}

// ObjectKind names the kind of object ObjectData reads.
type ObjectKind string

// The kinds a pod's environment may read from.
const (
	ConfigMap ObjectKind = "configMap"
	Secret    ObjectKind = "secret"
)

// ObjectSource is a plugin that supplies the data of the configMaps and
// secrets a pod's environment reads (configMapKeyRef, secretKeyRef,
// envFrom). A configMap's data are its string data only: binaryData never
// reaches an environment. A missing object is nil data and no error.
type ObjectSource interface {
	ObjectData(ctx context.Context, pod *v1.Pod, kind ObjectKind, name string) (map[string][]byte, error)
}

// EventReporter is a plugin that posts pod events upstream. ReportEvent
// must not block.
type EventReporter interface {
	ReportEvent(v1.Event)
}

// MirrorPods is a plugin that mirrors static pods upstream. StaticPods
// must not block.
type MirrorPods interface {
	StaticPods([]*v1.Pod)
}
