package imagegc

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

// harness is one collector over fakes.
type harness struct {
	gc    *GC
	rt    *fakeRuntime
	im    *fakeImages
	fs    *fakeFs
	clock *fakeClock
	log   *testutil.Buffer
}

func newHarness(t *testing.T, cfg Config, imgs ...*runtimeapi.Image) *harness {
	t.Helper()
	h := &harness{rt: &fakeRuntime{}, im: &fakeImages{}, fs: &fakeFs{}, clock: newFakeClock(t0), log: &testutil.Buffer{}}
	h.im.add(imgs...)
	h.fs.setUsed(500)
	gc, err := New(cfg, h.rt, h.im, WithClock(h.clock), WithFsStats(h.fs.stats),
		WithLogger(slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	h.gc = gc
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", h.log)
		}
	})
	return h
}

// collect runs a pass that must succeed.
func (h *harness) collect(t *testing.T) uint64 {
	t.Helper()
	freed, err := h.gc.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return freed
}

func criImg(id string, size uint64, tags ...string) *runtimeapi.Image {
	return &runtimeapi.Image{Id: id, Size: size, RepoTags: tags}
}

// logLines are the lines of a log that contain substr.
func logLines(b *testutil.Buffer, substr string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

var a, b, c, d = hexID("a"), hexID("b"), hexID("c"), hexID("d")

func TestNew(t *testing.T) {
	if _, err := New(Config{}, &fakeRuntime{}, &fakeImages{}); err == nil {
		t.Error("New accepted an invalid config")
	}
	if _, err := New(DefaultConfig(), nil, &fakeImages{}); err == nil {
		t.Error("New accepted no runtime")
	}
	if _, err := New(DefaultConfig(), &fakeRuntime{}, nil); err == nil {
		t.Error("New accepted no image service")
	}
	im := &fakeImages{}
	if _, err := New(DefaultConfig(), &fakeRuntime{}, im); err != nil || im.calls != 0 {
		t.Errorf("New: %v, %d calls to the image service; want no error, no call", err, im.calls)
	}
}

func TestCollectBelowHighRemovesNothing(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100), criImg(b, 100))
	h.clock.advance(time.Hour)
	h.collect(t) // records the images
	h.clock.advance(time.Hour)
	for _, used := range []uint64{0, 500, 849} {
		h.fs.setUsed(used)
		if freed := h.collect(t); freed != 0 {
			t.Errorf("at %d‰: freed %d", used, freed)
		}
	}
	if r := h.im.removedIDs(); len(r) != 0 {
		t.Errorf("removed %v below the high threshold", short(r))
	}
	// The same images go once the threshold is reached: the passes
	// below it did record them.
	h.fs.setUsed(850)
	if freed := h.collect(t); freed != 100 {
		t.Errorf("at 85%%: freed %d, want 100", freed)
	}
}

func TestCollectFreesDownToLow(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 50, "x/a:1"), criImg(b, 60, "x/b:1"), criImg(c, 70, "x/c:1"))
	h.collect(t)
	h.clock.advance(time.Hour)
	h.fs.setUsed(900) // 100 bytes to free to be at 80%
	if freed := h.collect(t); freed != 130 {
		t.Errorf("freed %d, want 130 (c then b: never used, seen together, larger first)", freed)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{c, b}) {
		t.Errorf("removed %v, want [c b]", short(r))
	}
	removed := logLines(h.log, "removed image")
	if len(removed) != 2 || !strings.Contains(removed[0], "image="+c) || !strings.Contains(removed[0], "tags=[x/c:1]") ||
		!strings.Contains(removed[0], "size=70") || !strings.Contains(removed[0], `reason="never used; first seen 1h0m0s ago"`) {
		t.Errorf("removal log lines:\n%s", strings.Join(removed, "\n"))
	}
	summary := logLines(h.log, `msg="image garbage collection"`)
	if len(summary) != 1 || !strings.Contains(summary[0], "usagePercent=90.0") || !strings.Contains(summary[0], "targetPercent=80") ||
		!strings.Contains(summary[0], "bytesToFree=100") || !strings.Contains(summary[0], "freed=130") {
		t.Errorf("summary log lines:\n%s", strings.Join(summary, "\n"))
	}
}

func TestCollectKeepsImagesInUse(t *testing.T) {
	h := newHarness(t, DefaultConfig(),
		criImg(a, 100, "x/a:1"), criImg(b, 100, "docker.io/library/busybox:1"), criImg(c, 100), criImg(d, 100))
	h.rt.set(
		&runtimeapi.Container{Id: "1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, ImageRef: a, ImageId: a, Image: &runtimeapi.ImageSpec{Image: "x/a:1"}},
		&runtimeapi.Container{Id: "2", State: runtimeapi.ContainerState_CONTAINER_EXITED, Image: &runtimeapi.ImageSpec{Image: "busybox:1"}},
		&runtimeapi.Container{Id: "3", State: runtimeapi.ContainerState_CONTAINER_CREATED, ImageId: c},
	)
	h.collect(t)
	h.clock.advance(time.Hour)
	h.fs.setUsed(1000) // 200 to free, only d may go
	freed, err := h.gc.Collect(context.Background())
	if freed != 100 || err == nil || !strings.Contains(err.Error(), "freed 100 of the 200 bytes") {
		t.Errorf("Collect = %d, %v; want 100 and an error saying it fell short", freed, err)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{d}) {
		t.Errorf("removed %v, want only the unused d", short(r))
	}
}

func TestCollectKeepsPinned(t *testing.T) {
	p := criImg(a, 500)
	p.Pinned = true
	h := newHarness(t, DefaultConfig(), p, criImg(b, 100))
	h.collect(t)
	h.clock.advance(time.Hour)
	h.fs.setUsed(1000)
	if _, err := h.gc.Collect(context.Background()); err == nil {
		t.Error("Collect freed less than needed without an error")
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{b}) {
		t.Errorf("removed %v, want only the unpinned b", short(r))
	}
}

func TestCollectMinAge(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100))
	h.fs.setUsed(900)
	// a is first seen now: too young to go, and nothing else may.
	if freed, err := h.gc.Collect(context.Background()); freed != 0 || err == nil {
		t.Errorf("first pass = %d, %v; want nothing freed and an error", freed, err)
	}
	h.clock.advance(time.Minute)
	h.im.add(criImg(b, 100))
	h.gc.Collect(context.Background()) // b first seen now; a 1m old
	if r := h.im.removedIDs(); len(r) != 0 {
		t.Fatalf("removed %v before MinAge", short(r))
	}
	h.clock.advance(90 * time.Second)
	// a is 2m30s old, b 1m30s: only a may go, and suffices.
	if freed := h.collect(t); freed != 100 {
		t.Errorf("freed %d, want 100", freed)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{a}) {
		t.Errorf("removed %v, want [a]", short(r))
	}
}

func TestCollectOrdersByLastUse(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100), criImg(b, 100), criImg(c, 50))
	h.rt.set(&runtimeapi.Container{Id: "1", ImageRef: a})
	h.collect(t) // t0: a used; b, c first seen
	h.clock.advance(time.Hour)
	h.rt.set(&runtimeapi.Container{Id: "2", ImageRef: b})
	h.collect(t) // t0+1h: b used
	h.clock.advance(time.Hour)
	h.rt.set()
	h.fs.setUsed(1000) // 200 to free: everything
	if freed := h.collect(t); freed != 250 {
		t.Errorf("freed %d, want 250", freed)
	}
	// a (used t0, 100) and c (never used, seen t0, 50) tie on time: the
	// larger first; b was used last.
	if r := h.im.removedIDs(); !slices.Equal(r, []string{a, c, b}) {
		t.Errorf("removed %v, want [a c b]", short(r))
	}
}

func TestCollectContinuesAfterRemoveError(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100), criImg(b, 100), criImg(c, 100))
	h.im.removeErr = map[string]error{a: errFake}
	h.collect(t)
	h.clock.advance(time.Hour)
	h.fs.setUsed(1000) // 200 to free: a and b planned (ID order), c not
	freed, err := h.gc.Collect(context.Background())
	if freed != 100 || err == nil || !strings.Contains(err.Error(), "1 of them failed") {
		t.Errorf("Collect = %d, %v; want 100 and an error counting the failure", freed, err)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{b}) {
		t.Errorf("removed %v, want [b]", short(r))
	}
	if l := logLines(h.log, "removing image failed"); len(l) != 1 || !strings.Contains(l[0], "image="+a) || !strings.Contains(l[0], errFake.Error()) {
		t.Errorf("failure log lines: %q", l)
	}
	// The next pass tries again, a first: it is still the oldest.
	h.im.removeErr = nil
	h.fs.setUsed(900)
	if freed := h.collect(t); freed != 100 {
		t.Errorf("second pass freed %d", freed)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{b, a}) {
		t.Errorf("removed %v, want [b a]", short(r))
	}
}

func TestCollectDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HighThresholdPercent = 100
	h := newHarness(t, cfg, criImg(a, 100))
	h.fs.setUsed(1000)
	if freed := h.collect(t); freed != 0 || h.im.calls != 0 {
		t.Errorf("disabled: freed %d with %d image service calls", freed, h.im.calls)
	}
}

func TestCollectErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness)
		want  string
	}{
		{"list images", func(h *harness) { h.im.listErr = errFake }, "list images: fake failure"},
		{"list containers", func(h *harness) { h.rt.err = errFake }, "list containers: fake failure"},
		{"no image filesystem", func(h *harness) { h.im.fsInfo = &runtimeapi.ImageFsInfoResponse{} }, "no image filesystem"},
		{"no mount point", func(h *harness) {
			h.im.fsInfo = &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{UsedBytes: &runtimeapi.UInt64Value{Value: 1}}}}
		}, "no mount point"},
		{"statfs", func(h *harness) { h.fs.err = errFake }, "fake failure"},
		{"capacity 0", func(h *harness) { h.fs.capacity, h.fs.available = 0, 0 }, "/images reports a capacity of 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig(), criImg(a, 100))
			h.fs.setUsed(1000)
			tt.setup(h)
			h.clock.advance(time.Hour)
			freed, err := h.gc.Collect(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || freed != 0 {
				t.Errorf("Collect = %d, %v; want an error saying %q", freed, err, tt.want)
			}
			if r := h.im.removedIDs(); len(r) != 0 {
				t.Errorf("removed %v after an error", short(r))
			}
		})
	}
}

func TestCollectMeasuresTheImageFilesystem(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.im.fsInfo = &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{
		{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/images"}},
		{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/other"}},
	}}
	h.collect(t)
	if !slices.Equal(h.fs.mountpoints, []string{"/var/lib/images"}) {
		t.Errorf("statted %v, want the first image filesystem", h.fs.mountpoints)
	}
}

func TestCollectWaitsForTheRunningPass(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100))
	h.gc.pass <- struct{}{} // a pass is running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.gc.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Collect while a pass runs, context ended = %v, want context.Canceled", err)
	}
	if h.im.calls != 0 {
		t.Errorf("%d image service calls while another pass held the collector", h.im.calls)
	}
	h.gc.release()
	h.collect(t)
}

func TestRun(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100), criImg(b, 100))
	h.fs.setUsed(1000) // full from the start: still no pass before a Period
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.gc.Run(ctx) }()

	timer := waitTimer(t, h.clock)
	if timer.d != 5*time.Minute {
		t.Errorf("first wait %s, want the period", timer.d)
	}
	if r := h.im.removedIDs(); len(r) != 0 {
		t.Errorf("Run removed %v before the first period", short(r))
	}
	// The images were recorded at the start: after a period they are
	// older than MinAge.
	h.clock.advance(5 * time.Minute)
	timer.fire <- h.clock.Now()
	timer = waitTimer(t, h.clock) // the pass is over
	if r := h.im.removedIDs(); !slices.Equal(r, []string{a, b}) {
		t.Errorf("first pass removed %v, want [a b]", short(r))
	}
	if l := logLines(h.log, "level=WARN"); len(l) != 0 {
		t.Errorf("warnings after a pass that freed what was needed: %q", l)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil when its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRunLogsFailedPassesAndGoesOn(t *testing.T) {
	h := newHarness(t, DefaultConfig(), criImg(a, 100))
	h.im.listErr = errFake
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.gc.Run(ctx) }()
	timer := waitTimer(t, h.clock) // recording failed, logged
	timer.fire <- h.clock.Now()
	waitTimer(t, h.clock) // the pass failed too, and Run waits for the next
	if l := logLines(h.log, "level=WARN"); len(l) != 2 {
		t.Errorf("warnings %q, want one for the start and one for the pass", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HighThresholdPercent = 100
	h := newHarness(t, cfg, criImg(a, 100))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.gc.Run(ctx); err != nil || h.im.calls != 0 {
		t.Errorf("disabled Run = %v with %d calls", err, h.im.calls)
	}
}

// waitTimer returns the next timer Run asks the clock for.
func waitTimer(t *testing.T, c *fakeClock) fakeTimer {
	t.Helper()
	select {
	case tm := <-c.waiters:
		return tm
	case <-time.After(10 * time.Second):
		t.Fatal("Run never waited for the next period")
		return fakeTimer{}
	}
}

func TestRemoveUnusedIgnoresThresholds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HighThresholdPercent, cfg.LowThresholdPercent = 100, 80 // collection disabled
	h := newHarness(t, cfg, criImg(a, 100, "x/a:1"), criImg(b, 200), criImg(c, 300))
	h.rt.set(&runtimeapi.Container{Id: "1", State: runtimeapi.ContainerState_CONTAINER_EXITED, ImageId: a})
	h.fs.setUsed(0)
	if freed, err := h.gc.RemoveUnused(context.Background()); freed != 0 || err != nil {
		t.Fatalf("RemoveUnused at first sight = %d, %v; want nothing (MinAge), no error", freed, err)
	}
	h.clock.advance(time.Hour)
	h.im.add(criImg(d, 400)) // first seen now: too young
	freed, err := h.gc.RemoveUnused(context.Background())
	if freed != 500 || err != nil {
		t.Errorf("RemoveUnused = %d, %v; want 500 (b and c), no error", freed, err)
	}
	if r := h.im.removedIDs(); !slices.Equal(r, []string{c, b}) {
		t.Errorf("removed %v, want [c b]: a is used, d too young", short(r))
	}
}
