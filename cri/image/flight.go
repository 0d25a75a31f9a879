package image

import (
	"context"
	"fmt"
	"sync"
)

// flightGroup runs one pull per reference at a time: a caller asking for a
// reference that is being pulled waits for that pull and gets its result.
// The pull runs in a goroutine the group owns, under a context of its own
// that keeps the first caller's values but not its cancellation; it is
// cancelled only when every caller waiting for it has gone, so a caller
// that gives up never fails the others.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flight
}

// flight is one pull under way.
type flight struct {
	waiters int // guarded by flightGroup.mu
	cancel  context.CancelFunc
	done    chan struct{} // closed when img and err are set
	img     Image
	err     error
}

// do returns the result of fn for key, running fn unless a call for key is
// under way, in which case it waits for that one. If ctx ends first, do
// returns ctx's error; when the last waiter leaves, it cancels fn and
// waits for it to return, so that a cancelled pull has cleaned up by the
// time its last caller hears of the cancellation, and a new call for key
// starts afresh instead of joining the doomed one.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) (Image, error)) (Image, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flight{}
	}
	f, ok := g.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{cancel: cancel, done: make(chan struct{})}
		g.calls[key] = f
		go func() {
			defer cancel()
			img, err := fn(fctx)
			g.mu.Lock()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
			f.img, f.err = img, err
			g.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.img.clone(), f.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && g.calls[key] == f {
		delete(g.calls, key)
	}
	g.mu.Unlock()
	if last {
		f.cancel()
		<-f.done
	}
	return Image{}, fmt.Errorf("pull %s: %w", key, ctx.Err())
}
