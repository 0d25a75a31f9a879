package events

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	testingclock "k8s.io/utils/clock/testing"
)

func TestRecorderCountsRepeatsAndBounds(t *testing.T) {
	c := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(c, "n1")
	p := Pod{Namespace: "default", Name: "web", UID: "u1"}
	r.Record(p, "app", v1.EventTypeWarning, "Unhealthy", "Liveness probe failed: boom")
	c.Step(time.Second)
	r.Record(p, "app", v1.EventTypeNormal, "Killing", "Container app failed liveness probe, will be restarted")
	c.Step(time.Second)
	r.Record(p, "app", v1.EventTypeWarning, "Unhealthy", "Liveness probe failed: boom")
	evs := r.List()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (a repeat is counted)", len(evs))
	}
	last := evs[1]
	if last.Reason != "Unhealthy" || last.Count != 2 || last.InvolvedObject.FieldPath != "spec.containers{app}" ||
		last.Source.Host != "n1" || !last.FirstTimestamp.Time.Before(last.LastTimestamp.Time) {
		t.Errorf("repeated event %+v", last)
	}
	for i := range 2 * MaxPerPod {
		r.Record(p, "", v1.EventTypeNormal, "Pulled", fmt.Sprint(i))
	}
	if n := len(r.List()); n != MaxPerPod {
		t.Errorf("%d events kept for one pod, want %d", n, MaxPerPod)
	}
	r.Forget("default", "web")
	if n := len(r.List()); n != 0 {
		t.Errorf("%d events after Forget", n)
	}
}

func TestRecorderWatch(t *testing.T) {
	r := New(nil, "n1")
	var seen []string
	r.Watch(func(e v1.Event) { seen = append(seen, fmt.Sprintf("%s/%d", e.Reason, e.Count)) })
	p := Pod{Namespace: "default", Name: "web", UID: "u1"}
	r.Record(p, "app", v1.EventTypeNormal, "Started", "Started container app")
	r.Record(p, "app", v1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
	r.Record(p, "app", v1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
	if got := fmt.Sprint(seen); got != "[Started/1 BackOff/1 BackOff/2]" {
		t.Errorf("watched %s", got)
	}
}
