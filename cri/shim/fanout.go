package shim

import (
	"errors"
	"io"
	"sync"
	"syscall"
)

// maxPending bounds the output queued for one attached client. The
// container is never made to wait for a client: one that falls this far
// behind is dropped (its session ends without an end frame).
const maxPending = 1 << 20

// fanout copies a container's live output, as frames, to the clients
// attached to it. Writing never blocks on a client: each has a queue that
// its own session goroutine drains, woken through a buffered signal.
type fanout struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool // the output is over; new subscribers end at once
}

// subscriber is one attached client's queue. Its fields belong to the
// fanout's lock.
type subscriber struct {
	pending []byte // frames not yet taken
	state   subState
	wake    chan struct{} // capacity 1: "look at the queue"
}

type subState int

const (
	subOpen    subState = iota
	subEnded            // the output is over: write what is pending, then the end frame
	subDropped          // fell too far behind: give up on this client
)

// subscribe adds a client. If the output is already over, the client's
// session ends at once.
func (f *fanout) subscribe() *subscriber {
	s := &subscriber{wake: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.state = subEnded
		s.signal()
		return s
	}
	if f.subs == nil {
		f.subs = map[*subscriber]struct{}{}
	}
	f.subs[s] = struct{}{}
	return s
}

// unsubscribe removes a client; it is idempotent.
func (f *fanout) unsubscribe(s *subscriber) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
}

// write queues p as a frame of type typ for every client.
func (f *fanout) write(typ byte, p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if len(s.pending)+5+len(p) > maxPending {
			s.state = subDropped
			s.pending = s.pending[:0]
			delete(f.subs, s)
		} else {
			s.pending = appendFrame(s.pending, typ, p)
		}
		s.signal()
	}
}

// close ends every session once its queue is written.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		s.state = subEnded
		s.signal()
	}
	f.subs = nil
}

// take hands over s's queued frames, giving spare (emptied) to collect
// the next ones, and says whether more can come.
func (f *fanout) take(s *subscriber, spare []byte) ([]byte, subState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := s.pending
	s.pending = spare[:0]
	return out, s.state
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain writes s's frames to w until the output ends or stop closes (then
// it writes the end frame and returns nil), s is dropped or writing fails.
func (f *fanout) drain(s *subscriber, w io.Writer, stop <-chan struct{}) error {
	var spare []byte
	for {
		select {
		case <-s.wake:
		case <-stop:
			return writeFrame(w, frameEnd, nil)
		}
		frames, state := f.take(s, spare)
		if len(frames) > 0 {
			if _, err := w.Write(frames); err != nil {
				return err
			}
		}
		spare = frames
		switch state {
		case subEnded:
			return writeFrame(w, frameEnd, nil)
		case subDropped:
			return errSlowClient
		}
	}
}

var errSlowClient = errors.New("attached client fell too far behind the container's output and was dropped")

// teeOutput passes a container's output to its reader (the log copier) and
// to the attached clients.
type teeOutput struct {
	r   io.Reader
	f   *fanout
	typ byte
}

func (t teeOutput) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.f.write(t.typ, p[:n])
	}
	// A terminal master reads EIO once no process holds the terminal:
	// that is the end of its output.
	if errors.Is(err, syscall.EIO) {
		err = io.EOF
	}
	return n, err
}
