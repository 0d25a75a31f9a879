package podstatus

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pod(ns, name string, phase v1.PodPhase) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: v1.PodStatus{Phase: phase}}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestCacheVersionsAndNotifies(t *testing.T) {
	c := New()
	ch, v0 := c.Changed()
	c.Set(pod("b", "x", v1.PodPending))
	if !closed(ch) {
		t.Fatal("a new pod did not notify")
	}
	ch, v1v := c.Changed()
	if v1v != v0+1 {
		t.Errorf("version %d after one change from %d", v1v, v0)
	}
	c.Set(pod("b", "x", v1.PodPending))
	if closed(ch) {
		t.Error("setting an equal pod notified")
	}
	p := pod("b", "x", v1.PodRunning)
	c.Set(p)
	if !closed(ch) {
		t.Error("a changed status did not notify")
	}
	p.Status.Phase = v1.PodFailed // the cache holds its own copy
	if got, _ := c.Get("b", "x"); got.Status.Phase != v1.PodRunning {
		t.Errorf("stored pod changed through the caller's pointer: %s", got.Status.Phase)
	}
	c.Set(pod("a", "y", v1.PodRunning))
	pods, _ := c.List()
	if len(pods) != 2 || pods[0].Namespace != "a" || pods[1].Namespace != "b" {
		t.Errorf("list not sorted by namespace/name: %v", pods)
	}
	ch, _ = c.Changed()
	c.Delete("nope", "nothing")
	if closed(ch) {
		t.Error("deleting an unknown pod notified")
	}
	c.Delete("a", "y")
	if !closed(ch) {
		t.Error("delete did not notify")
	}
	if _, ok := c.Get("a", "y"); ok {
		t.Error("deleted pod still there")
	}
}
