package kubeletapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The CRI labels berth's agent (as kubelet) puts on sandboxes and
// containers.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// PodLister is where the node's pods come from: the agent's status cache.
type PodLister interface {
	// Pods lists the pods with their latest status; the caller owns them.
	Pods() []v1.Pod
}

// httpError is an error with the status code it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers err: its own code for an httpError, 500 otherwise.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	http.Error(w, err.Error(), code)
}

// servePods answers /pods: the node's pods as a v1.PodList, as kubelet's.
func (s *Server) servePods(w http.ResponseWriter, _ *http.Request) {
	list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: s.cfg.Pods.Pods()}
	if list.Items == nil {
		list.Items = []v1.Pod{}
	}
	writeJSON(w, list)
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// pod finds the pod namespace/name; uid, when not "", must be its UID.
func (s *Server) pod(namespace, name, uid string) (*v1.Pod, error) {
	for _, p := range s.cfg.Pods.Pods() {
		if p.Namespace == namespace && p.Name == name && (uid == "" || string(p.UID) == uid) {
			return &p, nil
		}
	}
	if uid != "" {
		return nil, errorf(http.StatusNotFound, "pod %s/%s with UID %s not found on node %s", namespace, name, uid, s.cfg.NodeName)
	}
	return nil, errorf(http.StatusNotFound, "pod %s/%s not found on node %s", namespace, name, s.cfg.NodeName)
}

// containerStatus is the status of pod's container name (app, init or
// ephemeral); false when the pod has no such container.
func containerStatus(pod *v1.Pod, name string) (v1.ContainerStatus, bool) {
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name {
				return cs, true
			}
		}
	}
	return v1.ContainerStatus{}, false
}

// hasContainer says whether pod's spec has a container name.
func hasContainer(pod *v1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// runningContainer is the CRI ID of pod's running container name, which
// exec, attach and run need.
func runningContainer(pod *v1.Pod, name string) (string, error) {
	if !hasContainer(pod, name) {
		return "", errorf(http.StatusNotFound, "container %q not found in pod %s/%s", name, pod.Namespace, pod.Name)
	}
	cs, ok := containerStatus(pod, name)
	if !ok || cs.State.Running == nil || cs.ContainerID == "" {
		return "", errorf(http.StatusNotFound, "container %q in pod %s/%s is not running", name, pod.Namespace, pod.Name)
	}
	return runtimeID(cs.ContainerID), nil
}

// runtimeID is the runtime's ID in a status's "<runtime>://<id>".
func runtimeID(containerID string) string {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		return id
	}
	return containerID
}
