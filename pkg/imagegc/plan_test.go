package imagegc

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// hexID is a well-formed image ID ending in c.
func hexID(c string) string { return "sha256:" + strings.Repeat("0", 64-len(c)) + c }

func img(id string, size uint64, tags ...string) image {
	return image{id: id, size: size, tags: tags}
}

func pinned(i image) image { i.pinned = true; return i }

func withDigest(i image, d string) image { i.digests = append(i.digests, d); return i }

// seen is a record first detected ago before t0, never used.
func seen(ago time.Duration) record { return record{firstDetected: t0.Add(-ago)} }

// usedAt is a record first detected 24 h before t0, last used ago before it.
func usedAt(ago time.Duration) record {
	return record{firstDetected: t0.Add(-24 * time.Hour), lastUsed: t0.Add(-ago)}
}

// pct is a 1000-byte filesystem, used per mille / 10 percent full.
func pct(used uint64) usage { return usage{capacity: 1000, available: 1000 - used} }

func ctr(imageRef, imageID, spec string) *runtimeapi.Container {
	c := &runtimeapi.Container{Id: "c", ImageRef: imageRef, ImageId: imageID}
	if spec != "" {
		c.Image = &runtimeapi.ImageSpec{Image: spec}
	}
	return c
}

func TestPlan(t *testing.T) {
	def := policy{high: 85, low: 80, minAge: 2 * time.Minute, now: t0}
	a, b, c, d := hexID("a"), hexID("b"), hexID("c"), hexID("d")
	// Three old unused images, oldest first: a, b, c.
	three := []image{img(c, 70, "x/c:1"), img(a, 50, "x/a:1"), img(b, 60, "x/b:1")}
	threeRecs := map[string]record{a: usedAt(3 * time.Hour), b: usedAt(2 * time.Hour), c: usedAt(time.Hour)}

	tests := []struct {
		name    string
		p       policy
		imgs    []image
		ctrs    []*runtimeapi.Container
		records map[string]record
		u       usage
		want    []string
	}{
		// Thresholds.
		{name: "below high removes nothing", p: def, imgs: three, records: threeRecs, u: pct(849)},
		{name: "empty filesystem", p: def, imgs: three, records: threeRecs, u: pct(0)},
		{name: "at high exactly: 85% frees 50 bytes (to 80%)", p: def, imgs: three, records: threeRecs, u: pct(850), want: []string{a}},
		{name: "90%: 100 bytes to free takes the two oldest", p: def, imgs: three, records: threeRecs, u: pct(900), want: []string{a, b}},
		{name: "the sizes fit exactly", p: def, imgs: three, records: threeRecs, u: pct(910), want: []string{a, b}},
		{name: "one byte more takes the third", p: def, imgs: three, records: threeRecs, u: pct(911), want: []string{a, b, c}},
		{name: "not enough eligible: everything eligible", p: def, imgs: three, records: threeRecs, u: pct(1000), want: []string{a, b, c}},
		{name: "high 100 disables, even when full", p: policy{high: 100, low: 80, now: t0}, imgs: three, records: threeRecs, u: pct(1000)},
		{name: "low 0 frees everything used", p: policy{high: 15, low: 0, now: t0}, imgs: three, records: threeRecs, u: pct(180), want: []string{a, b, c}},
		{name: "high 1 low 0", p: policy{high: 1, low: 0, now: t0}, imgs: three, records: threeRecs, u: pct(10), want: []string{a}},
		{name: "capacity 0", p: def, imgs: three, records: threeRecs, u: usage{}},
		{name: "available above capacity counts as empty", p: def, imgs: three, records: threeRecs, u: usage{capacity: 1000, available: 2000}},
		{name: "huge filesystem, no overflow", p: def, imgs: []image{img(a, math.MaxUint64/10)}, records: threeRecs,
			u: usage{capacity: math.MaxUint64, available: math.MaxUint64 / 10}, want: []string{a}},
		{name: "just below high on a huge filesystem", p: def, imgs: []image{img(a, 1)}, records: threeRecs,
			u: usage{capacity: math.MaxUint64, available: math.MaxUint64 - math.MaxUint64/100*85 + 100}},
		{name: "no images", p: def, u: pct(900)},

		// In use, by any name, is never removed.
		{name: "in use by image_ref = ID", p: def, imgs: three, records: threeRecs, u: pct(900),
			ctrs: []*runtimeapi.Container{ctr(a, "", "")}, want: []string{b, c}},
		{name: "in use by image_id", p: def, imgs: three, records: threeRecs, u: pct(900),
			ctrs: []*runtimeapi.Container{ctr("", a, "")}, want: []string{b, c}},
		{name: "in use by the tag it asked for", p: def, imgs: three, records: threeRecs, u: pct(900),
			ctrs: []*runtimeapi.Container{ctr("", "", "x/a:1")}, want: []string{b, c}},
		{name: "in use by a short name of its tag", p: def, records: threeRecs, u: pct(900),
			imgs: []image{img(a, 50, "docker.io/library/busybox:latest"), img(b, 60)},
			ctrs: []*runtimeapi.Container{ctr("", "", "busybox")}, want: []string{b}},
		{name: "in use by the ID without sha256:", p: def, imgs: three, records: threeRecs, u: pct(900),
			ctrs: []*runtimeapi.Container{ctr("", "", strings.TrimPrefix(a, "sha256:"))}, want: []string{b, c}},
		{name: "in use by repo digest (containerd's image_ref)", p: def, records: threeRecs, u: pct(900),
			imgs: []image{withDigest(img(a, 50, "x/a:1"), "x/a@"+b), img(b, 60), img(c, 70)},
			ctrs: []*runtimeapi.Container{ctr("docker.io/x/a@"+b, "", "")}, want: []string{b, c}},
		{name: "in use by tag and digest, digest wins", p: def, records: threeRecs, u: pct(900),
			imgs: []image{withDigest(img(a, 50), "x/a@"+b), img(b, 60), img(c, 70)},
			ctrs: []*runtimeapi.Container{ctr("", "", "x/a:other@"+b)}, want: []string{b, c}},
		{name: "another tag of the same repository is not a use", p: def, imgs: three, records: threeRecs, u: pct(900),
			ctrs: []*runtimeapi.Container{ctr("", "", "x/a:2")}, want: []string{a, b}},
		{name: "every image in use", p: def, imgs: three, records: threeRecs, u: pct(1000),
			ctrs: []*runtimeapi.Container{ctr(a, a, "x/a:1"), ctr(b, b, "x/b:1"), ctr(c, c, "x/c:1")}},

		// Pinned.
		{name: "pinned is never removed", p: def, records: threeRecs, u: pct(900),
			imgs: []image{pinned(img(a, 50)), img(b, 60), img(c, 70)}, want: []string{b, c}},

		// Minimum age.
		{name: "first seen less than MinAge ago stays", p: def, u: pct(900),
			imgs:    []image{img(a, 500), img(b, 60)},
			records: map[string]record{a: seen(119 * time.Second), b: seen(time.Hour)}, want: []string{b}},
		{name: "first seen exactly MinAge ago goes", p: def, u: pct(900),
			imgs:    []image{img(a, 500), img(b, 60)},
			records: map[string]record{a: seen(2 * time.Minute), b: seen(time.Hour)}, want: []string{b, a}},
		{name: "MinAge counts from first seen, not last used", p: def, u: pct(900),
			imgs:    []image{img(a, 500)},
			records: map[string]record{a: {firstDetected: t0.Add(-time.Minute), lastUsed: t0.Add(-time.Minute)}}},
		{name: "no record: as if first seen now", p: def, u: pct(900), imgs: []image{img(a, 500)}},
		{name: "no record with MinAge 0 goes", p: policy{high: 85, low: 80, now: t0}, u: pct(900), imgs: []image{img(a, 500)}, want: []string{a}},

		// Order.
		{name: "least recently used first, whatever the list order", p: def, u: pct(1000),
			imgs:    []image{img(a, 10), img(b, 10), img(c, 10), img(d, 10)},
			records: map[string]record{a: usedAt(time.Minute), b: usedAt(time.Hour), c: usedAt(time.Second), d: usedAt(2 * time.Hour)},
			want:    []string{d, b, a, c}},
		{name: "never used counts from first seen", p: def, u: pct(1000),
			imgs:    []image{img(a, 10), img(b, 10), img(c, 10)},
			records: map[string]record{a: usedAt(time.Hour), b: seen(5 * time.Hour), c: seen(10 * time.Minute)},
			want:    []string{b, a, c}},
		{name: "ties: larger first", p: def, u: pct(1000),
			imgs:    []image{img(a, 10), img(b, 30), img(c, 20)},
			records: map[string]record{a: usedAt(time.Hour), b: usedAt(time.Hour), c: seen(time.Hour)},
			want:    []string{b, c, a}},
		{name: "ties of time and size: by ID", p: def, u: pct(1000),
			imgs:    []image{img(c, 10), img(a, 10), img(b, 10)},
			records: map[string]record{a: usedAt(time.Hour), b: usedAt(time.Hour), c: usedAt(time.Hour)},
			want:    []string{a, b, c}},
		{name: "a large young image does not jump the queue", p: def, u: pct(900),
			imgs:    []image{img(a, 1000), img(b, 60), img(c, 60)},
			records: map[string]record{a: usedAt(time.Minute), b: usedAt(time.Hour), c: usedAt(2 * time.Hour)},
			want:    []string{c, b}},
		{name: "zero-size images are taken and the pass goes on", p: def, u: pct(900),
			imgs:    []image{img(a, 0), img(b, 100)},
			records: map[string]record{a: usedAt(2 * time.Hour), b: usedAt(time.Hour)},
			want:    []string{a, b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(tt.p, tt.imgs, inUseBy(tt.ctrs), tt.records, tt.u)
			var ids []string
			for _, r := range got {
				ids = append(ids, r.image.id)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("plan removes\n %v\nwant\n %v", short(ids), short(tt.want))
			}
		})
	}
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.TrimLeft(strings.TrimPrefix(id, "sha256:"), "0")
	}
	return out
}

func TestPlanReasons(t *testing.T) {
	p := policy{high: 85, low: 80, minAge: 2 * time.Minute, now: t0}
	a, b := hexID("a"), hexID("b")
	got := plan(p, []image{img(a, 100), img(b, 100)}, nil,
		map[string]record{a: seen(3 * time.Hour), b: usedAt(90 * time.Minute)}, pct(1000))
	want := []removal{
		{image: img(a, 100), lastUsed: t0.Add(-3 * time.Hour), reason: "never used; first seen 3h0m0s ago"},
		{image: img(b, 100), lastUsed: t0.Add(-90 * time.Minute), reason: "unused; last used 1h30m0s ago"},
	}
	if len(got) != len(want) {
		t.Fatalf("plan = %+v", got)
	}
	for i := range want {
		if got[i].image.id != want[i].image.id || !got[i].lastUsed.Equal(want[i].lastUsed) || got[i].reason != want[i].reason {
			t.Errorf("removal %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestThresholdArithmetic(t *testing.T) {
	tests := []struct {
		high, low int
		u         usage
		over      bool
		toFree    uint64
	}{
		{85, 80, pct(849), false, 49},
		{85, 80, pct(850), true, 50},
		{85, 80, usage{capacity: 3, available: 0}, true, 1}, // 80% of 3 is 2.4: keep 2
		{85, 80, usage{capacity: 7, available: 1}, true, 1}, // 6/7 = 85.7%; 80% of 7 is 5.6: keep 5
		{85, 80, usage{capacity: 7, available: 2}, false, 0},
		{50, 0, pct(500), true, 500},
		{100, 99, pct(1000), false, 10},
		{1, 0, usage{capacity: math.MaxUint64, available: math.MaxUint64 - math.MaxUint64/100 - 1}, true, math.MaxUint64/100 + 1},
	}
	for _, tt := range tests {
		p := policy{high: tt.high, low: tt.low}
		if got := p.over(tt.u); got != tt.over {
			t.Errorf("%d%%: over(%+v) = %v, want %v", tt.high, tt.u, got, tt.over)
		}
		if got := p.bytesToFree(tt.u); got != tt.toFree {
			t.Errorf("%d%%: bytesToFree(%+v) = %d, want %d", tt.low, tt.u, got, tt.toFree)
		}
	}
}
