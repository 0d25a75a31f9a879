package shutdown

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func pod(name string, opts ...func(*v1.Pod)) v1.Pod {
	p := v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.PodStatus{Phase: v1.PodRunning}}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func TestStages(t *testing.T) {
	critical := func(p *v1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }
	pods := []v1.Pod{
		pod("web"), pod("dns", critical), pod("done", func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }),
		pod("leaving", func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{} }), pod("db"),
		pod("by-priority", func(p *v1.Pod) { p.Spec.Priority = ptr.To[int32](2000001000) }),
	}
	st := stages(pods, 30*time.Second, 10*time.Second)
	names := func(s stage) []string {
		var out []string
		for _, p := range s.pods {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(st[0]); len(got) != 2 || got[0] != "web" || got[1] != "db" || st[0].budget != 20*time.Second {
		t.Errorf("first stage %v within %s, want the regular pods web, db within 20s", got, st[0].budget)
	}
	if got := names(st[1]); len(got) != 2 || got[0] != "dns" || got[1] != "by-priority" || st[1].budget != 10*time.Second {
		t.Errorf("second stage %v within %s, want the critical pods within 10s", got, st[1].budget)
	}
}

func TestPodGrace(t *testing.T) {
	for _, tc := range []struct {
		own    *int64
		budget time.Duration
		want   int64
	}{
		{nil, 20 * time.Second, 20},
		{nil, time.Minute, 30},
		{ptr.To[int64](5), 20 * time.Second, 5},
		{ptr.To[int64](60), 20 * time.Second, 20},
		{ptr.To[int64](60), 500 * time.Millisecond, 1},
		{ptr.To[int64](60), 0, 0},
	} {
		p := pod("p", func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = tc.own })
		if got := podGrace(&p, tc.budget); got != tc.want {
			t.Errorf("own %v, budget %s: grace %d, want %d", tc.own, tc.budget, got, tc.want)
		}
	}
}
