package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/admission"
	"github.com/berth-project/berth/pkg/eviction"
	"github.com/berth-project/berth/pkg/upstream"
)

// syncPods watches the pods bound to this node (one watch, a field
// selector, resumed from its resource version by client-go's reflector),
// hands the complete set to the sink whenever it changes, reports the
// agent's statuses, and finishes graceful deletions.
func (p *Plugin) syncPods(ctx context.Context, sink upstream.Sink, node *v1.Node) {
	inf := cache.NewSharedIndexInformer(p.client.podsOn(p.cfg.NodeName), &v1.Pod{}, 0, cache.Indexers{})
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	})
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	var statusChanged <-chan struct{}
	rejected := map[types.UID]string{} // reported, so not patched again
	for {
		var apiPods, mirrors []*v1.Pod
		for _, o := range inf.GetStore().List() {
			if pod := o.(*v1.Pod); isMirror(pod) {
				mirrors = append(mirrors, pod)
			} else {
				apiPods = append(apiPods, pod)
			}
		}
		p.syncMirrors(ctx, mirrors, node)
		p.setAPIPods(apiPods)
		desired, rejects := p.admit(apiPods)
		sink.Pods(desired)
		for _, r := range rejects {
			if rejected[r.pod.UID] != r.message {
				p.reject(ctx, r)
				rejected[r.pod.UID] = r.message
			}
		}
		present := map[types.UID]bool{}
		for _, pod := range apiPods {
			present[pod.UID] = true
		}
		for uid := range rejected {
			if !present[uid] {
				delete(rejected, uid)
			}
		}
		if p.statuses != nil {
			// Changed before List: a change in between wakes the next pass.
			statusChanged, _ = p.statuses.Changed()
			statuses, _ := p.statuses.List()
			p.reportStatuses(ctx, apiPods, mirrors, statuses)
		}
		p.forgetVolumes(present)
		p.finishDeletions(ctx, apiPods, present)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-statusChanged:
		case <-p.terminated:
		case <-p.staticChanged:
		case <-p.cfg.Clock.After(time.Minute): // a safety net for lost wake-ups
		}
	}
}

// rejection is a pod the node will not run, as kubelet's admission words it.
type rejection struct {
	pod             *v1.Pod
	reason, message string
}

// admit picks what runs: pods that are not finished, in creation order,
// that the node can run. A pod already past Pending was admitted before
// (by this node, before a restart) and keeps its place.
func (p *Plugin) admit(apiPods []*v1.Pod) ([]*v1.Pod, []rejection) {
	sort.Slice(apiPods, func(i, j int) bool {
		a, b := apiPods[i].CreationTimestamp, apiPods[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return apiPods[i].UID < apiPods[j].UID
	})
	var out []*v1.Pod
	var rejects []rejection
	var used v1.ResourceList
	ports := map[string]string{}
	allocatable := p.allocatable
	// Static pods were admitted by the agent before any API pod.
	p.mu.Lock()
	count := len(p.static)
	for _, s := range p.static {
		used = admission.Add(used, s)
	}
	p.mu.Unlock()
	var pressure nodePressure
	if p.cfg.Pressure != nil {
		pressure.memory, pressure.disk = p.cfg.Pressure()
	}
	for _, pod := range apiPods {
		if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		if pod.DeletionTimestamp != nil && p.isDone(pod.UID) {
			continue // terminated: only the API object is left to delete
		}
		if reason, msg := p.admissible(pod, count, used, allocatable, ports, pressure); reason != "" && pod.Status.Phase == v1.PodPending {
			rejects = append(rejects, rejection{pod: pod, reason: reason, message: msg})
			continue
		}
		used, count = admission.Add(used, pod), count+1
		for _, hp := range hostPorts(pod) {
			ports[hp] = pod.Namespace + "/" + pod.Name
		}
		// Without what changes with every status write: the agent needs
		// the spec, and the journal is rewritten only when it changes.
		q := pod.DeepCopy()
		q.ResourceVersion, q.ManagedFields, q.Status = "", nil, v1.PodStatus{}
		if q.Annotations == nil {
			q.Annotations = map[string]string{}
		}
		q.Annotations[configSourceAnnotKey] = configSourceAPI
		out = append(out, q)
	}
	return out, rejects
}

type nodePressure struct{ memory, disk bool }

// admissible says why the node cannot run pod, or "".
func (p *Plugin) admissible(pod *v1.Pod, count int, used, allocatable v1.ResourceList, ports map[string]string, pressure nodePressure) (reason, message string) {
	// As kubelet's eviction admission: under disk pressure no new pod, under
	// memory pressure no BestEffort one unless it tolerates the
	// memory-pressure taint; critical pods always.
	if !eviction.Critical(pod) {
		switch {
		case pressure.disk:
			return "Evicted", "The node had condition: [DiskPressure]. "
		case pressure.memory && bestEffort(pod) && !toleratesMemoryPressure(pod):
			return "Evicted", "The node had condition: [MemoryPressure]. "
		}
	}
	if rc := pod.Spec.RuntimeClassName; rc != nil && *rc != "" {
		return "UnsupportedRuntimeClass", fmt.Sprintf("runtime class %q is not available on node %s (berth runs runc only)", *rc, p.cfg.NodeName)
	}
	for _, v := range pod.Spec.Volumes {
		if !supportedVolume(v) {
			return "UnsupportedVolume", fmt.Sprintf("volume %q: its source is not supported by berth yet "+
				"(emptyDir, hostPath, downwardAPI, configMap, secret and projected configMap, secret, serviceAccountToken, downwardAPI are)", v.Name)
		}
	}
	for _, hp := range hostPorts(pod) {
		if other, ok := ports[hp]; ok {
			return "NodePorts", fmt.Sprintf("node %s didn't have free ports for the requested pod ports: %s is used by pod %s", p.cfg.NodeName, hp, other)
		}
	}
	if reason, msg := admission.Fit(pod, count, used, allocatable); reason != "" {
		return reason, msg
	}
	return "", ""
}

func bestEffort(pod *v1.Pod) bool {
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
				return false
			}
		}
	}
	return true
}

// toleratesMemoryPressure: a toleration matching the valueless
// node.kubernetes.io/memory-pressure:NoSchedule taint.
func toleratesMemoryPressure(pod *v1.Pod) bool {
	for _, t := range pod.Spec.Tolerations {
		key := t.Key == v1.TaintNodeMemoryPressure || t.Key == "" && t.Operator == v1.TolerationOpExists
		effect := t.Effect == "" || t.Effect == v1.TaintEffectNoSchedule
		value := t.Operator == v1.TolerationOpExists || t.Value == ""
		if key && effect && value {
			return true
		}
	}
	return false
}

func supportedVolume(v v1.Volume) bool {
	switch {
	case v.EmptyDir != nil, v.HostPath != nil, v.DownwardAPI != nil, v.ConfigMap != nil, v.Secret != nil:
		return true
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			if s.ConfigMap == nil && s.Secret == nil && s.ServiceAccountToken == nil && s.DownwardAPI == nil {
				return false
			}
		}
		return true
	}
	return false
}

func hostPorts(pod *v1.Pod) []string {
	var out []string
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				proto := port.Protocol
				if proto == "" {
					proto = v1.ProtocolTCP
				}
				out = append(out, fmt.Sprintf("%s/%s:%d", proto, port.HostIP, port.HostPort))
			}
		}
	}
	return out
}

// reject fails the pod in the API, as kubelet's admission does.
func (p *Plugin) reject(ctx context.Context, r rejection) {
	st := r.pod.Status.DeepCopy()
	st.Phase, st.Reason, st.Message = v1.PodFailed, r.reason, "Pod was rejected: "+r.message
	if err := p.patchStatus(ctx, r.pod, *st); err != nil {
		p.cfg.Log.Warn("reject pod", "pod", r.pod.Namespace+"/"+r.pod.Name, "err", err)
		return
	}
	p.cfg.Log.Info("pod rejected", "pod", r.pod.Namespace+"/"+r.pod.Name, "reason", r.reason, "message", r.message)
}

// reportStatuses patches each pod whose status in the agent's cache
// differs from the API's; a mirror pod gets its static pod's status.
func (p *Plugin) reportStatuses(ctx context.Context, apiPods, mirrors []*v1.Pod, statuses []v1.Pod) {
	byKey := map[string]*v1.Pod{}
	for i := range statuses {
		byKey[statuses[i].Namespace+"/"+statuses[i].Name] = &statuses[i]
	}
	report := func(pod *v1.Pod, uid types.UID) {
		agent, ok := byKey[pod.Namespace+"/"+pod.Name]
		if !ok || agent.UID != uid {
			return
		}
		st := p.withHostIP(mergeStatus(pod.Status, agent.Status))
		if equality.Semantic.DeepEqual(st, pod.Status) {
			return
		}
		if err := p.patchStatus(ctx, pod, st); err != nil && ctx.Err() == nil {
			p.cfg.Log.Warn("report pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	for _, pod := range apiPods {
		report(pod, pod.UID)
	}
	for _, m := range mirrors {
		if m.DeletionTimestamp == nil {
			report(m, types.UID(m.Annotations[mirrorAnnotation]))
		}
	}
}

// withHostIP reports the Node's InternalIP as the pod's host IP, as
// kubelet does (the API allows one address per family).
func (p *Plugin) withHostIP(st v1.PodStatus) v1.PodStatus {
	if p.hostIP == "" {
		return st
	}
	st.HostIP, st.HostIPs = p.hostIP, []v1.HostIP{{IP: p.hostIP}}
	return st
}

// mergeStatus is the agent's status with what others own in the API's:
// conditions the agent does not set (PodScheduled, readiness gates) and a
// nominated node. A terminal phase in the API is never undone.
func mergeStatus(api, agent v1.PodStatus) v1.PodStatus {
	st := *agent.DeepCopy()
	own := map[v1.PodConditionType]bool{}
	for _, c := range st.Conditions {
		own[c.Type] = true
	}
	for _, c := range api.Conditions {
		if !own[c.Type] {
			st.Conditions = append(st.Conditions, c)
		}
	}
	sort.SliceStable(st.Conditions, func(i, j int) bool { return st.Conditions[i].Type < st.Conditions[j].Type })
	st.NominatedNodeName = api.NominatedNodeName
	if api.Phase == v1.PodSucceeded || api.Phase == v1.PodFailed {
		st.Phase = api.Phase
	}
	// Times in the API have second precision: compare like with like.
	return roundTrip(st)
}

func roundTrip(st v1.PodStatus) v1.PodStatus {
	data, err := json.Marshal(st)
	if err != nil {
		return st
	}
	var out v1.PodStatus
	if json.Unmarshal(data, &out) != nil {
		return st
	}
	return out
}

// patchStatus replaces the pod's status through the status subresource;
// the UID in the patch makes it fail for another pod of the same name.
func (p *Plugin) patchStatus(ctx context.Context, pod *v1.Pod, st v1.PodStatus) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   st,
	})
	if err != nil {
		return err
	}
	return p.client.patchPodStatus(ctx, pod.Namespace, pod.Name, patch)
}

// finishDeletions deletes, with grace 0, the pods deleted through the API
// that the agent has terminated.
func (p *Plugin) finishDeletions(ctx context.Context, apiPods []*v1.Pod, present map[types.UID]bool) {
	p.mu.Lock()
	for uid := range p.doneUIDs {
		if !present[uid] {
			delete(p.doneUIDs, uid)
		}
	}
	p.mu.Unlock()
	for _, pod := range apiPods {
		if pod.DeletionTimestamp == nil || !p.isDone(pod.UID) {
			continue
		}
		err := p.client.deletePod(ctx, pod.Namespace, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		switch {
		case err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			p.cfg.Log.Info("pod deleted", "pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
		case ctx.Err() == nil:
			p.cfg.Log.Warn("delete pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
}
