package shutdown

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/eviction"
)

// stage is a set of pods stopped together, and how long they have.
type stage struct {
	pods []*v1.Pod
	// budget is the stage's share of the shutdown grace period; each
	// pod gets its own grace period, at most the budget.
	budget time.Duration
}

// stages plans a shutdown as kubelet's graceful node shutdown does:
// regular pods first, within grace less criticalGrace, then critical pods
// within criticalGrace. Pods that finished or are being deleted already
// are left out. Pure.
func stages(pods []v1.Pod, grace, criticalGrace time.Duration) []stage {
	regular := stage{budget: grace - criticalGrace}
	critical := stage{budget: criticalGrace}
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		if eviction.Critical(p) {
			critical.pods = append(critical.pods, p)
		} else {
			regular.pods = append(regular.pods, p)
		}
	}
	return []stage{regular, critical}
}

// podGrace is the grace period a pod gets in a stage: its own, at most
// the stage's budget (in whole seconds, at least one when there is any).
func podGrace(p *v1.Pod, budget time.Duration) int64 {
	limit := int64(budget / time.Second)
	if budget > 0 && limit == 0 {
		limit = 1
	}
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		return min(*g, limit)
	}
	return min(30, limit) // the API's default
}
