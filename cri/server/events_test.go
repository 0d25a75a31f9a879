package server

import (
	"context"
	"errors"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

func event(id string) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: id}
}

// nextNow returns the subscriber's next event, failing the test if it
// would block.
func nextNow(t *testing.T, sub *subscription) (*runtimeapi.ContainerEventResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev, err := sub.next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("next blocked")
	}
	return ev, err
}

func TestBroadcasterDeliversInOrderToEverySubscriber(t *testing.T) {
	b := newBroadcaster(4)
	if b.active() {
		t.Error("active with no subscriber")
	}
	s1, _ := b.subscribe()
	s2, _ := b.subscribe()
	if !b.active() {
		t.Error("not active with subscribers")
	}
	for _, id := range []string{"a", "b", "c"} {
		b.publish(event(id))
	}
	for _, sub := range []*subscription{s1, s2} {
		for _, want := range []string{"a", "b", "c"} {
			ev, err := nextNow(t, sub)
			if err != nil || ev.GetContainerId() != want {
				t.Fatalf("next = %v, %v; want %s", ev, err, want)
			}
		}
	}
}

func TestBroadcasterDropsOnlyTheSubscriberThatFellBehind(t *testing.T) {
	b := newBroadcaster(2)
	slow, _ := b.subscribe()
	fast, _ := b.subscribe()
	for _, id := range []string{"a", "b", "c"} {
		b.publish(event(id)) // never blocks, though slow reads nothing
		if ev, err := nextNow(t, fast); err != nil || ev.GetContainerId() != id {
			t.Fatalf("fast: next = %v, %v; want %s", ev, err, id)
		}
	}
	// The third event overflowed slow's buffer of 2: it is told at once,
	// not after its stale backlog.
	if _, err := nextNow(t, slow); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("slow: err = %v, want Unavailable", err)
	}
	b.publish(event("d"))
	if ev, err := nextNow(t, fast); err != nil || ev.GetContainerId() != "d" {
		t.Fatalf("fast after the drop: next = %v, %v", ev, err)
	}
	b.unsubscribe(slow) // after a drop: harmless
	b.unsubscribe(fast)
	if b.active() {
		t.Error("active after everyone left")
	}
}

func TestBroadcasterUnsubscribe(t *testing.T) {
	b := newBroadcaster(1)
	sub, _ := b.subscribe()
	b.unsubscribe(sub)
	b.unsubscribe(sub)
	b.publish(event("a"))
	b.publish(event("b")) // would overflow a subscriber still listed
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("next after unsubscribe = %v; want no event and the context's error", err)
	}
}

func TestBroadcasterClose(t *testing.T) {
	b := newBroadcaster(1)
	sub, _ := b.subscribe()
	b.close(errdefs.Unavailable("shutting down"))
	if _, err := nextNow(t, sub); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("next after close = %v, want Unavailable", err)
	}
	if _, err := b.subscribe(); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("subscribe after close = %v, want Unavailable", err)
	}
	b.publish(event("a")) // no one to deliver to, and no panic
}

func TestBroadcasterNextWaitsForAnEvent(t *testing.T) {
	b := newBroadcaster(1)
	sub, _ := b.subscribe()
	got := make(chan string)
	go func() {
		ev, _ := sub.next(context.Background())
		got <- ev.GetContainerId()
	}()
	b.publish(event("late"))
	select {
	case id := <-got:
		if id != "late" {
			t.Errorf("got %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("next did not return the event")
	}
}

func TestExitWatchersSettleWaitsForTheWatcher(t *testing.T) {
	w := newExitWatchers()
	finished := make(chan struct{})
	w.start("a", func(ctx context.Context) {
		<-ctx.Done()
		close(finished) // a watcher's last check runs after its cancel
	})
	w.start("a", func(context.Context) { t.Error("second watcher for the same ID") })
	w.settle("a")
	select {
	case <-finished:
	default:
		t.Fatal("settle returned before the watcher did")
	}
	w.settle("a")       // nothing left: returns at once
	w.settle("unknown") // likewise

	ran := make(chan struct{})
	w.start("a", func(context.Context) { close(ran) }) // a new watch after the old one ended
	<-ran
}

func TestExitWatchersStopAll(t *testing.T) {
	w := newExitWatchers()
	var done [3]chan struct{}
	for i := range done {
		done[i] = make(chan struct{})
		w.start(string(rune('a'+i)), func(ctx context.Context) {
			<-ctx.Done()
			close(done[i])
		})
	}
	w.stopAll()
	for i := range done {
		select {
		case <-done[i]:
		default:
			t.Fatalf("watcher %d still running after stopAll", i)
		}
	}
	w.start("late", func(context.Context) { t.Error("watcher started after stopAll") })
	w.stopAll()
}
