package server

import "sync"

// opLocks serialise the mutating operations on one sandbox or container,
// so that, say, two RemovePodSandbox calls or a CreateContainer racing a
// RemovePodSandbox cannot interleave. Lock order: a sandbox's lock before
// any of its containers' locks, never the other way round.
type opLocks struct {
	mu    sync.Mutex
	locks map[string]*opLock
}

type opLock struct {
	sync.Mutex
	refs int
}

// lock takes the lock for key and returns its release.
func (o *opLocks) lock(key string) (unlock func()) {
	o.mu.Lock()
	if o.locks == nil {
		o.locks = map[string]*opLock{}
	}
	l := o.locks[key]
	if l == nil {
		l = &opLock{}
		o.locks[key] = l
	}
	l.refs++
	o.mu.Unlock()

	l.Lock()
	return func() {
		l.Unlock()
		o.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(o.locks, key)
		}
		o.mu.Unlock()
	}
}

func sandboxKey(id string) string   { return "sandbox/" + id }
func containerKey(id string) string { return "container/" + id }
