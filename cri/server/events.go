package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/store"
)

// eventBuffer is how many events one subscriber may fall behind before it
// is dropped. kubelet reads its stream continuously, so the buffer only
// has to absorb a burst (a node's worth of pods starting at once).
const eventBuffer = 256

// GetContainerEvents streams every container lifecycle change (created,
// started, stopped, deleted) from the moment of the call until the client
// hangs up. Sandboxes are reported the same way under their own ID, as
// kubelet's evented PLEG expects: each event carries the pod's sandbox
// status and the statuses of all its remaining containers.
//
// Events are never queued for a subscriber without bound: one that falls
// eventBuffer events behind is dropped with Unavailable and must relist
// (ListPodSandbox/ListContainers) before subscribing again, which is what
// kubelet does on any stream error. Events before the call, and those of
// a berthd restart, are not replayed either: relisting covers them. The
// response header is sent once the subscription is in place, so a client
// that waits for it (Header) knows it will miss nothing from then on.
func (s *Service) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	sub, err := s.events.subscribe()
	if err != nil {
		return toGRPC(err)
	}
	defer s.events.unsubscribe(sub)
	// The response header tells the client it is subscribed: whatever
	// happens after it has read the header reaches it.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	s.log.Debug("container events subscriber joined")
	for {
		ev, err := sub.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("container events subscriber dropped", "error", err)
			}
			return toGRPC(err)
		}
		// A client that stops reading blocks this Send (gRPC flow
		// control), never a publisher: meanwhile its buffer fills and it
		// is dropped.
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
}

// emitContainer publishes an event of c: with its sandbox's status and the
// statuses of the sandbox's containers as they are now (without c once it
// is deleted). It costs nothing when nobody listens.
func (s *Service) emitContainer(typ runtimeapi.ContainerEventType, c *store.Container) {
	s.nriContainerStopped(typ, c)
	if !s.events.active() {
		return
	}
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        c.Meta.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if sb, err := s.store.Sandbox(c.Meta.SandboxID); err == nil {
		ev.PodSandboxStatus = sandboxStatus(sb, sb.Status())
	}
	ev.ContainersStatuses = s.sandboxContainerStatuses(c.Meta.SandboxID)
	s.events.publish(ev)
}

// emitSandbox publishes an event of the sandbox itself, under its ID. sb
// may already be gone from the store (for DELETED): its last status is
// still in the record.
func (s *Service) emitSandbox(typ runtimeapi.ContainerEventType, sb *store.Sandbox) {
	if !s.events.active() {
		return
	}
	s.events.publish(&runtimeapi.ContainerEventResponse{
		ContainerId:        sb.Meta.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
		PodSandboxStatus:   sandboxStatus(sb, sb.Status()),
		ContainersStatuses: s.sandboxContainerStatuses(sb.Meta.ID),
	})
}

// sandboxContainerStatuses are the CRI statuses of a sandbox's containers,
// read from their records (exits the shims recorded applied) without
// asking any shim or runc.
func (s *Service) sandboxContainerStatuses(sandboxID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range s.store.SandboxContainers(sandboxID) {
		out = append(out, s.criContainerStatus(c, c.Status()))
	}
	return out
}

// broadcaster hands each published event to every subscriber. Publishing
// never blocks: a subscriber whose buffer is full is dropped.
type broadcaster struct {
	buffer int

	mu     sync.Mutex
	subs   map[*subscription]struct{}
	closed error // set once close was called
}

// subscription is one subscriber's queue. done is closed, with err set
// before, when the broadcaster drops it.
type subscription struct {
	events chan *runtimeapi.ContainerEventResponse
	done   chan struct{}
	err    error
}

func newBroadcaster(buffer int) *broadcaster {
	return &broadcaster{buffer: buffer, subs: map[*subscription]struct{}{}}
}

// subscribe adds a subscriber; it fails once the broadcaster is closed.
// The caller must unsubscribe.
func (b *broadcaster) subscribe() (*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return nil, b.closed
	}
	sub := &subscription{events: make(chan *runtimeapi.ContainerEventResponse, b.buffer), done: make(chan struct{})}
	b.subs[sub] = struct{}{}
	return sub, nil
}

// unsubscribe removes a subscriber; repeating it, or unsubscribing a
// dropped one, does nothing.
func (b *broadcaster) unsubscribe(sub *subscription) {
	b.mu.Lock()
	delete(b.subs, sub)
	b.mu.Unlock()
}

// active reports whether anybody listens, so that publishers can skip
// building events nobody would read.
func (b *broadcaster) active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// publish queues ev for every subscriber without waiting: whoever has no
// room left is dropped. Subscribers share ev and must not modify it.
func (b *broadcaster) publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub := range b.subs {
		select {
		case sub.events <- ev:
		default:
			b.drop(sub, errdefs.Unavailable("container events: subscriber fell %d events behind and was dropped; relist and subscribe again", b.buffer))
		}
	}
}

// close drops every subscriber with err and refuses new ones.
func (b *broadcaster) close(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = err
	for sub := range b.subs {
		b.drop(sub, err)
	}
}

// drop needs b.mu.
func (b *broadcaster) drop(sub *subscription, err error) {
	delete(b.subs, sub)
	sub.err = err
	close(sub.done)
}

// next returns the subscriber's next event; it blocks until there is one,
// the subscriber is dropped (its error), or ctx ends (ctx's error).
func (sub *subscription) next(ctx context.Context) (*runtimeapi.ContainerEventResponse, error) {
	select {
	case <-sub.done: // dropped: do not trickle out a stale backlog first
		return nil, sub.err
	default:
	}
	select {
	case ev := <-sub.events:
		return ev, nil
	case <-sub.done:
		return nil, sub.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
