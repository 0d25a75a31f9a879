package agent

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func version(uid types.UID, isGated bool) *v1.Pod {
	p := testPod()
	p.UID = uid
	if isGated {
		p.Annotations = map[string]string{annotationHealthGated: "true", annotationReadyDeadline: "2m"}
	}
	return p
}

func TestGate(t *testing.T) {
	a, b, c := version("a", false), version("b", true), version("c", true)
	good := gateRecord{Good: a}
	tests := []struct {
		name    string
		rec     gateRecord
		desired *v1.Pod
		cur     runningView
		now     time.Time
		run     types.UID
		want    gateRecord
		event   string
		wait    time.Duration
	}{
		{name: "the first version runs and, once Ready, is the good one",
			desired: a, cur: runningView{pod: a, ready: true}, run: "a", want: good},
		{name: "a gated update is tried", rec: good, desired: b, cur: runningView{pod: a, ready: true}, now: t0,
			run: "b", want: gateRecord{Good: a, Trying: "b", Since: t0}, wait: 2 * time.Minute},
		{name: "Ready, it must stay so for a while", rec: gateRecord{Good: a, Trying: "b", Since: t0}, desired: b,
			cur: runningView{pod: b, ready: true}, now: t0.Add(time.Minute), run: "b",
			want: gateRecord{Good: a, Trying: "b", Since: t0, ReadySince: t0.Add(time.Minute)}, wait: 10 * time.Second},
		{name: "it goes through once it stayed Ready", rec: gateRecord{Good: a, Trying: "b", Since: t0, ReadySince: t0}, desired: b,
			cur: runningView{pod: b, ready: true}, now: t0.Add(10 * time.Second), run: "b", want: gateRecord{Good: b}, event: "went through"},
		{name: "Ready for a moment, then not: the wait starts again", rec: gateRecord{Good: a, Trying: "b", Since: t0, ReadySince: t0}, desired: b,
			cur: runningView{pod: b}, now: t0.Add(5 * time.Second), run: "b", want: gateRecord{Good: a, Trying: "b", Since: t0}, wait: 115 * time.Second},
		{name: "it is rolled back when not Ready in time", rec: gateRecord{Good: a, Trying: "b", Since: t0}, desired: b,
			cur: runningView{pod: b}, now: t0.Add(2 * time.Minute), run: "a",
			want: gateRecord{Good: a, Rejected: "b", Reason: "it did not become Ready within 2m0s"}, event: "rolled back to version a"},
		{name: "it is rolled back when it crash-loops", rec: gateRecord{Good: a, Trying: "b", Since: t0}, desired: b,
			cur: runningView{pod: b, crashLooping: true}, now: t0.Add(time.Second), run: "a",
			want: gateRecord{Good: a, Rejected: "b", Reason: "its containers crash-loop"}, event: "rolled back"},
		{name: "a rejected version is not tried again", rec: gateRecord{Good: a, Rejected: "b", Reason: "x"}, desired: b,
			cur: runningView{pod: a, ready: true}, now: t0.Add(time.Hour), run: "a", want: gateRecord{Good: a, Rejected: "b", Reason: "x"}},
		{name: "a changed version is", rec: gateRecord{Good: a, Rejected: "b", Reason: "x"}, desired: c,
			cur: runningView{pod: a, ready: true}, now: t0, run: "c", want: gateRecord{Good: a, Trying: "c", Since: t0}, wait: 2 * time.Minute},
		{name: "without the annotation an update just replaces", rec: gateRecord{Good: b}, desired: a,
			cur: runningView{pod: b, ready: true}, run: "a", want: gateRecord{Good: b}},
		{name: "without a version that was Ready there is nothing to go back to", desired: b,
			cur: runningView{pod: b, crashLooping: true}, now: t0.Add(time.Hour), run: "b"},
		{name: "a removed pod runs nothing", rec: good, desired: nil, run: "", want: good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := gate(tt.rec, tt.desired, tt.cur, tt.now)
			var run types.UID
			if d.run != nil {
				run = d.run.UID
			}
			if run != tt.run {
				t.Errorf("runs %q, want %q", run, tt.run)
			}
			got, want := d.record, tt.want
			goodOf := func(r gateRecord) types.UID {
				if r.Good == nil {
					return ""
				}
				return r.Good.UID
			}
			if goodOf(got) != goodOf(want) || got.Trying != want.Trying || !got.Since.Equal(want.Since) || got.Rejected != want.Rejected || got.Reason != want.Reason || !got.ReadySince.Equal(want.ReadySince) {
				t.Errorf("record good=%s trying=%s since=%v rejected=%s %q, want good=%s trying=%s since=%v rejected=%s %q",
					goodOf(got), got.Trying, got.Since, got.Rejected, got.Reason, goodOf(want), want.Trying, want.Since, want.Rejected, want.Reason)
			}
			if (tt.event == "") != (d.event == "") || !strings.Contains(d.event, tt.event) {
				t.Errorf("event %q, want one saying %q", d.event, tt.event)
			}
			if d.wait != tt.wait {
				t.Errorf("wait %v, want %v", d.wait, tt.wait)
			}
		})
	}
}

func TestGateRecordOnDisk(t *testing.T) {
	m := &Manager{cfg: Config{PodDir: t.TempDir()}}
	rec := gateRecord{Good: version("a", false), Rejected: "b", Reason: "it crash-loops"}
	if err := m.saveGate("default", "web-n1", rec); err != nil {
		t.Fatal(err)
	}
	got, err := m.loadGate("default", "web-n1")
	if err != nil || got.Good.UID != "a" || got.Rejected != "b" || got.Reason != rec.Reason {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := m.saveGate("default", "web-n1", gateRecord{}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.loadGate("default", "web-n1"); err != nil || got.Good != nil {
		t.Errorf("an empty record is no file: %+v %v", got, err)
	}
}
