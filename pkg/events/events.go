// Package events keeps the recent events of each pod (probe failures,
// kills, back-offs) for the local API, as `kubectl get events` shows them:
// a repeated event is counted, not stored again, and only the newest
// MaxPerPod events of a pod are kept.
package events

import (
	"sort"
	"strconv"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// MaxPerPod bounds the events kept for one pod.
const MaxPerPod = 64

// Recorder holds events; its methods may be called from any goroutine and
// never block on readers.
type Recorder struct {
	clock clock.Clock
	node  string

	mu    sync.Mutex
	pods  map[string][]v1.Event // by namespace/name, oldest first
	seq   uint64
	watch []func(v1.Event)
}

// Watch has fn called with every event recorded from now on (repeats
// too, with their count), outside the recorder's lock, in the order they
// were recorded; fn must not block. Watchers: the upstream plugin that
// posts events, the metrics.
func (r *Recorder) Watch(fn func(v1.Event)) {
	r.mu.Lock()
	r.watch = append(r.watch, fn)
	r.mu.Unlock()
}

// New returns a recorder; events name node as their source host.
func New(c clock.Clock, node string) *Recorder {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Recorder{clock: c, node: node, pods: map[string][]v1.Event{}}
}

// Pod is what an event is about.
type Pod struct {
	Namespace, Name string
	UID             types.UID
}

// Record adds an event of type (v1.EventTypeNormal or Warning) about a
// pod, or one of its containers when container is not "".
func (r *Recorder) Record(p Pod, container, typ, reason, message string) {
	now := metav1.NewTime(r.clock.Now())
	key := p.Namespace + "/" + p.Name
	field := ""
	if container != "" {
		field = "spec.containers{" + container + "}"
	}
	r.mu.Lock()
	watch := r.watch
	var recorded v1.Event
	defer func() {
		r.mu.Unlock()
		for _, fn := range watch {
			fn(recorded)
		}
	}()
	evs := r.pods[key]
	for i := range evs {
		e := &evs[i]
		if e.Reason == reason && e.Message == message && e.InvolvedObject.FieldPath == field && e.InvolvedObject.UID == p.UID {
			e.Count++
			e.LastTimestamp = now
			// The newest stays last.
			moved := *e
			evs = append(append(evs[:i:i], evs[i+1:]...), moved)
			r.pods[key] = evs
			recorded = *moved.DeepCopy()
			return
		}
	}
	r.seq++
	evs = append(evs, v1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name + "." + strconv.FormatUint(r.seq, 16)},
		InvolvedObject: v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name,
			UID: p.UID, FieldPath: field},
		Reason: reason, Message: message, Type: typ, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source: v1.EventSource{Component: "berth", Host: r.node},
	})
	recorded = *evs[len(evs)-1].DeepCopy()
	if len(evs) > MaxPerPod {
		evs = append([]v1.Event(nil), evs[len(evs)-MaxPerPod:]...)
	}
	r.pods[key] = evs
}

// Forget drops the events of a pod that is gone.
func (r *Recorder) Forget(namespace, name string) {
	r.mu.Lock()
	delete(r.pods, namespace+"/"+name)
	r.mu.Unlock()
}

// List returns copies of all events, oldest first.
func (r *Recorder) List() []v1.Event {
	r.mu.Lock()
	var out []v1.Event
	for _, evs := range r.pods {
		out = append(out, evs...)
	}
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastTimestamp.Before(&out[j].LastTimestamp) })
	for i := range out {
		out[i] = *out[i].DeepCopy()
	}
	return out
}
