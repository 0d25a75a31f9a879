package stats

import (
	"sync"
	"time"
)

// MinRateWindow is the shortest time over which Rates averages CPU usage.
const MinRateWindow = time.Second

// forgetAfter is how long Rates keeps the reading of an object nobody
// asks about any more (a removed container): long past any poll interval.
const forgetAfter = 10 * time.Minute

// Rates turns cumulative CPU usage readings into usage rates. It keeps
// one reading per key (a container or pod ID) in memory; see the package
// documentation for how a rate is derived. Safe for concurrent use.
type Rates struct {
	mu        sync.Mutex
	kept      map[string]ratePoint
	lastSweep time.Time
}

type ratePoint struct {
	at      time.Time
	usage   uint64 // cumulative core-nanoseconds
	rate    uint64 // core-nanoseconds per second, when hasRate
	hasRate bool
}

// NewRates returns an empty Rates.
func NewRates() *Rates { return &Rates{kept: map[string]ratePoint{}} }

// NanoCores records a reading of key's cumulative CPU usage (core-
// nanoseconds) taken at at, and returns the average usage in core-
// nanoseconds per second since the reading it kept. ok is false when
// there is no rate yet: the first reading, or the first after the counter
// went backwards (a pod whose summed cgroups lost a member) or the clock
// did.
func (r *Rates) NanoCores(key string, at time.Time, usage uint64) (nanoCores uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(at)
	p, found := r.kept[key]
	window := at.Sub(p.at)
	switch {
	case !found || usage < p.usage || window < 0:
		r.kept[key] = ratePoint{at: at, usage: usage}
		return 0, false
	case window < MinRateWindow:
		return p.rate, p.hasRate
	}
	rate := uint64(float64(usage-p.usage) / window.Seconds())
	r.kept[key] = ratePoint{at: at, usage: usage, rate: rate, hasRate: true}
	return rate, true
}

// Forget drops what is kept for key.
func (r *Rates) Forget(key string) {
	r.mu.Lock()
	delete(r.kept, key)
	r.mu.Unlock()
}

// sweep drops readings nobody renewed for forgetAfter, at most once a
// minute. r.mu is held.
func (r *Rates) sweep(now time.Time) {
	if now.Sub(r.lastSweep) < time.Minute {
		return
	}
	r.lastSweep = now
	for k, p := range r.kept {
		if now.Sub(p.at) > forgetAfter {
			delete(r.kept, k)
		}
	}
}
