package kube

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// ReportEvent is upstream.EventReporter's: events of pods from the API
// are posted through client-go's broadcaster, which aggregates repeats
// and rate-limits a noisy pod as kubelet's events are. Events of static
// pods stay local (they have no API object yet).
func (p *Plugin) ReportEvent(e v1.Event) {
	p.mu.Lock()
	rec, ok := p.recorder, p.apiUIDs[e.InvolvedObject.UID]
	p.mu.Unlock()
	if rec == nil || !ok {
		return
	}
	ref := e.InvolvedObject
	rec.Event(&ref, e.Type, e.Reason, e.Message)
}

// startEvents starts the broadcaster once the client exists.
func (p *Plugin) startEvents(ctx context.Context) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(p.client)
	rec := b.NewRecorder(scheme, v1.EventSource{Component: "berth", Host: p.cfg.NodeName})
	p.mu.Lock()
	p.recorder = rec
	p.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
}

// setAPIPods records which UIDs are API pods, whose events are posted.
func (p *Plugin) setAPIPods(pods []*v1.Pod) {
	uids := make(map[types.UID]bool, len(pods))
	for _, pod := range pods {
		uids[pod.UID] = true
	}
	p.mu.Lock()
	p.apiUIDs = uids
	p.mu.Unlock()
}
