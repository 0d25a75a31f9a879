package imagegc

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// usage is the image filesystem's size and free space, in bytes.
type usage struct {
	capacity, available uint64
}

func (u usage) used() uint64 {
	if u.available >= u.capacity {
		return 0
	}
	return u.capacity - u.available
}

// percent is for logs only; decisions use exact integer arithmetic.
func (u usage) percent() float64 {
	if u.capacity == 0 {
		return 0
	}
	return float64(u.used()) * 100 / float64(u.capacity)
}

// policy is the configuration of one pass, at one instant.
type policy struct {
	high, low int // percent, 0–100, low < high
	minAge    time.Duration
	now       time.Time
}

func policyAt(c Config, now time.Time) policy {
	return policy{high: c.HighThresholdPercent, low: c.LowThresholdPercent, minAge: c.MinAge, now: now}
}

// over reports whether usage is at or above the high threshold:
// used/capacity >= high/100, computed without rounding or overflow.
func (p policy) over(u usage) bool {
	if p.high >= 100 || u.capacity == 0 {
		return false
	}
	uh, ul := bits.Mul64(u.used(), 100)
	ch, cl := bits.Mul64(u.capacity, uint64(p.high))
	return uh > ch || uh == ch && ul >= cl
}

// bytesToFree is how much must go for usage to be at most the low
// threshold.
func (p policy) bytesToFree(u usage) uint64 {
	target := percentOf(u.capacity, p.low)
	if u.used() <= target {
		return 0
	}
	return u.used() - target
}

// percentOf is floor(n*pct/100) for pct in 0–100, without overflow.
func percentOf(n uint64, pct int) uint64 {
	pct = min(max(pct, 0), 100)
	hi, lo := bits.Mul64(n, uint64(pct))
	q, _ := bits.Div64(hi, lo, 100) // hi < 100 as pct <= 100
	return q
}

// removal is one image a pass removes, and why.
type removal struct {
	image    image
	lastUsed time.Time // last used, or first seen if never used
	reason   string
}

// plan decides which images a pass at p.now removes, in order, given the
// images listed, those in use, the records (already refreshed for this
// pass) and the filesystem usage. Below the high threshold it removes
// nothing. Otherwise it takes, least recently used first (never used
// counting as used when first seen; ties: larger first, then by ID), the
// images that are not in use, not pinned and at least p.minAge old, until
// their sizes add up to what brings usage to the low threshold — or
// every such image if they do not suffice.
func plan(p policy, imgs []image, used inUse, records map[string]record, u usage) []removal {
	if !p.over(u) {
		return nil
	}
	need := p.bytesToFree(u)
	candidates := unused(p, imgs, used, records)
	var planned uint64
	for i, c := range candidates {
		planned += c.image.size
		if planned >= need {
			return candidates[:i+1]
		}
	}
	return candidates
}

// unused are the images that may go at p.now, least recently used first.
func unused(p policy, imgs []image, used inUse, records map[string]record) []removal {
	var candidates []removal
	for _, img := range imgs {
		if img.pinned || used.uses(img) {
			continue
		}
		r, ok := records[img.id]
		if !ok {
			r = record{firstDetected: p.now} // unknown: as young as can be
		}
		if age := p.now.Sub(r.firstDetected); age < p.minAge {
			continue
		}
		candidates = append(candidates, removal{image: img, lastUsed: r.lastUsedOrDetected(), reason: reason(r, p.now)})
	}
	slices.SortFunc(candidates, func(a, b removal) int {
		return cmp.Or(
			a.lastUsed.Compare(b.lastUsed),
			cmp.Compare(b.image.size, a.image.size),
			cmp.Compare(a.image.id, b.image.id),
		)
	})
	return candidates
}

func reason(r record, now time.Time) string {
	if r.lastUsed.IsZero() {
		return fmt.Sprintf("never used; first seen %s ago", now.Sub(r.firstDetected).Round(time.Second))
	}
	return fmt.Sprintf("unused; last used %s ago", now.Sub(r.lastUsed).Round(time.Second))
}
