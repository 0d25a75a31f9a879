package imagegc

import "time"

// record is what the collector remembers of an image between passes.
type record struct {
	// firstDetected is when a pass first listed the image.
	firstDetected time.Time
	// lastUsed is when a pass last saw a container refer to it; zero if
	// none ever did.
	lastUsed time.Time
}

// lastUsedOrDetected orders images for removal: when the image was last
// used, or, never used, when it was first seen.
func (r record) lastUsedOrDetected() time.Time {
	if r.lastUsed.IsZero() {
		return r.firstDetected
	}
	return r.lastUsed
}

// refresh returns the records after a pass at now observed imgs, of which
// used are in use: new images are first detected now, used ones are used
// now, and images no longer listed are forgotten. old is not changed.
func refresh(old map[string]record, imgs []image, used inUse, now time.Time) map[string]record {
	out := make(map[string]record, len(imgs))
	for _, img := range imgs {
		r, ok := old[img.id]
		if !ok {
			r.firstDetected = now
		}
		if used.uses(img) {
			r.lastUsed = now
		}
		out[img.id] = r
	}
	return out
}
