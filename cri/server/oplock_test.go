package server

import (
	"sync"
	"testing"
)

func TestOpLocksSerialiseOneKeyAndForgetIdleKeys(t *testing.T) {
	var o opLocks
	var wg sync.WaitGroup
	inside := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := o.lock("sandbox/a")
			inside++ // data race if the lock does not serialise (go test -race)
			if inside != 1 {
				t.Error("two holders of one key")
			}
			inside--
			unlock()
		}()
	}
	wg.Wait()
	// Other keys are independent: holding a, b can still be taken.
	unlockA := o.lock("sandbox/a")
	o.lock("sandbox/b")()
	unlockA()
	if len(o.locks) != 0 {
		t.Errorf("%d idle keys kept", len(o.locks))
	}
}
