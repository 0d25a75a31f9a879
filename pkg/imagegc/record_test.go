package imagegc

import (
	"maps"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRefresh(t *testing.T) {
	a, b, c, d := hexID("a"), hexID("b"), hexID("c"), hexID("d")
	t1 := t0.Add(time.Hour)
	old := map[string]record{
		a: {firstDetected: t0},               // still there, unused
		b: {firstDetected: t0},               // still there, used now
		c: {firstDetected: t0, lastUsed: t0}, // still there, used before
		d: {firstDetected: t0, lastUsed: t0}, // gone
	}
	before := maps.Clone(old)
	e := hexID("e") // new, used
	f := hexID("f") // new, unused
	imgs := []image{img(a, 1), img(b, 1, "x/b:1"), img(c, 1), img(e, 1), img(f, 1)}
	used := inUseBy([]*runtimeapi.Container{{Image: &runtimeapi.ImageSpec{Image: "x/b:1"}}, {ImageRef: e}})

	got := refresh(old, imgs, used, t1)
	want := map[string]record{
		a: {firstDetected: t0},
		b: {firstDetected: t0, lastUsed: t1},
		c: {firstDetected: t0, lastUsed: t0},
		e: {firstDetected: t1, lastUsed: t1},
		f: {firstDetected: t1},
	}
	if !maps.Equal(got, want) {
		t.Errorf("refresh =\n %v\nwant\n %v", got, want)
	}
	if !maps.Equal(old, before) {
		t.Errorf("refresh changed its input")
	}
}

func TestLastUsedOrDetected(t *testing.T) {
	if got := (record{firstDetected: t0}).lastUsedOrDetected(); !got.Equal(t0) {
		t.Errorf("never used: %v, want first detected", got)
	}
	t1 := t0.Add(time.Hour)
	if got := (record{firstDetected: t0, lastUsed: t1}).lastUsedOrDetected(); !got.Equal(t1) {
		t.Errorf("used: %v, want last used", got)
	}
}
