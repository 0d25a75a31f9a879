package kube

import (
	"context"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// mirrorAnnotation marks a mirror pod: the API's read-only copy of a
// static pod, carrying the static pod's hash.
const (
	mirrorAnnotation = "kubernetes.io/config.mirror"
	hashAnnotation   = "kubernetes.io/config.hash"
)

// StaticPods is upstream.MirrorPods's: the static pods the node runs.
func (p *Plugin) StaticPods(pods []*v1.Pod) {
	p.mu.Lock()
	p.static = pods
	p.mu.Unlock()
	select {
	case p.staticChanged <- struct{}{}:
	default:
	}
}

func isMirror(pod *v1.Pod) bool {
	_, ok := pod.Annotations[mirrorAnnotation]
	return ok
}

// syncMirrors makes the API's mirror pods match the static pods: a
// missing one is created, one of an older version of the manifest is
// deleted (and created again next pass), one without a static pod goes.
// What anyone writes to a mirror pod is never read back.
func (p *Plugin) syncMirrors(ctx context.Context, mirrors []*v1.Pod, node *v1.Node) {
	p.mu.Lock()
	static := p.static
	p.mu.Unlock()
	byKey := map[string]*v1.Pod{}
	for _, m := range mirrors {
		byKey[m.Namespace+"/"+m.Name] = m
	}
	for _, s := range static {
		key := s.Namespace + "/" + s.Name
		m, ok := byKey[key]
		delete(byKey, key)
		switch {
		case !ok:
			if _, err := p.client.createPod(ctx, mirrorOf(s, node)); err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
				p.cfg.Log.Warn("create mirror pod", "pod", key, "err", err)
			}
		case m.DeletionTimestamp == nil && m.Annotations[mirrorAnnotation] != s.Annotations[hashAnnotation]:
			p.deleteMirror(ctx, m)
		}
	}
	for _, m := range byKey {
		if m.DeletionTimestamp == nil {
			p.deleteMirror(ctx, m)
		}
	}
}

func (p *Plugin) deleteMirror(ctx context.Context, m *v1.Pod) {
	err := p.client.deletePod(ctx, m.Namespace, m.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &m.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		p.cfg.Log.Warn("delete mirror pod", "pod", m.Namespace+"/"+m.Name, "err", err)
	}
}

// mirrorOf is the mirror pod of a static pod, owned by the Node (as the
// NodeRestriction admission plugin requires).
func mirrorOf(s *v1.Pod, node *v1.Node) *v1.Pod {
	m := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels,
			Annotations: map[string]string{}, OwnerReferences: []metav1.OwnerReference{
				// NodeRestriction admits a node's mirror pod only with the
				// Node as its controller.
				{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}},
		Spec: *s.Spec.DeepCopy(),
	}
	for k, v := range s.Annotations {
		m.Annotations[k] = v
	}
	m.Annotations[mirrorAnnotation] = s.Annotations[hashAnnotation]
	return m
}
