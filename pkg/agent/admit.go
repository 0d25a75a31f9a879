package agent

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/admission"
	"github.com/berth-project/berth/pkg/eviction"
	"github.com/berth-project/berth/pkg/podstatus"
)

// admitLocked decides which of the pods in want the node takes in, as
// kubelet's admission does before a pod's first container: a version
// seen for the first time must fit the node's allocatable next to the
// versions already admitted, oldest first. A version the runtime already
// runs was admitted before a restart, and a critical pod is always
// admitted (kubelet would preempt others for it; berth does not). It
// returns the refusals, by UID: such a pod is Failed with kubelet's
// reason (OutOfcpu, OutOfmemory, OutOfpods…) and never runs, until its
// spec (its UID) changes.
func (m *Manager) admitLocked(ctx context.Context, want map[string]*v1.Pod) (map[types.UID]*evictionRecord, error) {
	if m.cfg.Allocatable == nil {
		return nil, nil
	}
	var candidates []*v1.Pod
	var used v1.ResourceList
	count := 0
	for key, p := range want {
		if m.admitted[p.UID] {
			if st, ok := m.status.Get(p.Namespace, p.Name); !ok || st.UID != p.UID || !finished(st.Status.Phase) {
				used, count = admission.Add(used, p), count+1
			}
			continue
		}
		if w := m.workers[key]; w != nil && w.rejected(p.UID) {
			continue
		}
		candidates = append(candidates, p)
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	running, err := m.runningUIDs(ctx, false)
	if err != nil {
		return nil, err
	}
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if ra, rb := running[a.UID], running[b.UID]; ra != rb {
			return ra
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return podstatus.Key(a.Namespace, a.Name) < podstatus.Key(b.Namespace, b.Name)
	})
	var refused map[types.UID]*evictionRecord
	for _, p := range candidates {
		if !running[p.UID] && !eviction.Critical(p) {
			if reason, msg := admission.Fit(p, count, used, m.cfg.Allocatable); reason != "" {
				if refused == nil {
					refused = map[types.UID]*evictionRecord{}
				}
				refused[p.UID] = &evictionRecord{Reason: reason, Message: "Pod was rejected: " + msg, At: m.clock.Now(), rejected: true}
				m.cfg.Log.Info("pod rejected", "pod", podstatus.Key(p.Namespace, p.Name), "reason", reason, "message", msg)
				continue
			}
		}
		m.admitted[p.UID] = true
		used, count = admission.Add(used, p), count+1
	}
	return refused, nil
}

// forgetAdmittedLocked drops the versions no longer wanted.
func (m *Manager) forgetAdmittedLocked(want map[string]*v1.Pod) {
	keep := map[types.UID]bool{}
	for _, p := range want {
		keep[p.UID] = true
	}
	for uid := range m.admitted {
		if !keep[uid] {
			delete(m.admitted, uid)
		}
	}
}

// runningUIDs are the pod versions the runtime has a sandbox of; the
// agent's only, or (all) any client's.
func (m *Manager) runningUIDs(ctx context.Context, all bool) (map[types.UID]bool, error) {
	filter := &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManaged: "true"}}
	if all {
		filter = nil
	}
	resp, err := m.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
	if err != nil {
		return nil, err
	}
	out := map[types.UID]bool{}
	for _, sb := range resp.GetItems() {
		out[types.UID(sb.GetMetadata().GetUid())] = true
	}
	return out, nil
}

func finished(phase v1.PodPhase) bool { return phase == v1.PodSucceeded || phase == v1.PodFailed }

// rejected says whether the pod's version was refused at admission.
func (w *worker) rejected(uid types.UID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.evictions[uid]
	return rec != nil && rec.rejected
}
