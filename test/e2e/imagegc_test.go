package e2e

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/imagegc"
	"github.com/berth-project/berth/test/harness"
)

// TestImageGCRemovesUnusedImages runs one image garbage collection pass
// through berthd's real CRI, with the image filesystem reported as 90 %
// full (its capacity chosen so that every unused image must go to reach
// 80 %): the images no container uses are removed, those of a running and
// of a created-but-not-started container stay, as do pinned ones.
func TestImageGCRemovesUnusedImages(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)

	const (
		running = "berth.test/gc-running:1"
		created = "berth.test/gc-created:1"
		unused  = "berth.test/gc-unused:1"
	)
	dir := t.TempDir()
	for i, ref := range []string{running, created, unused} {
		img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", fmt.Sprintf("N=%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(dir, fmt.Sprintf("gc%d.tar", i))
		if err := harness.WriteDockerArchive(archive, ref, img); err != nil {
			t.Fatal(err)
		}
		e.berthctl("images", "import", archive)
	}

	pod := e.podConfig("imagegc")
	podID := e.runPod(pod)
	runID := e.start(podID, pod, containerConfig("run", []string{"sleep", "3600"}, withImage(running)))
	e.create(podID, pod, containerConfig("created", []string{"true"}, withImage(created)))

	// What must go: busybox (newEnv's) and gc-unused, unless pinned.
	before := imageGCByTag(t, e)
	for _, ref := range []string{busybox, running, created, unused} {
		if before[ref] == nil {
			t.Fatalf("image %s not listed after import: %v", ref, imageGCTags(before))
		}
	}
	var mustGo []string
	var unusedSize uint64
	for _, ref := range []string{busybox, unused} {
		if !before[ref].GetPinned() {
			mustGo = append(mustGo, ref)
			unusedSize += before[ref].GetSize()
		}
	}
	if unusedSize == 0 {
		t.Fatalf("unused images have no size: %v", before)
	}

	fs := &imageGCFs{capacity: 10 * unusedSize, available: unusedSize} // 90 % used; 80 % is unusedSize less
	gc, err := imagegc.New(imagegc.Config{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 0, Period: time.Hour},
		e.d.Runtime, e.d.Images,
		imagegc.WithClock(imageGCClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}),
		imagegc.WithFsStats(fs.stats),
		imagegc.WithLogger(slog.New(slog.NewTextHandler(imageGCLog{t}, nil))))
	if err != nil {
		t.Fatal(err)
	}

	freed, err := gc.Collect(c)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if freed != unusedSize {
		t.Errorf("freed %d bytes, want %d (the unused images)", freed, unusedSize)
	}
	fsInfo, err := e.im.ImageFsInfo(c, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if want := fsInfo.GetImageFilesystems()[0].GetFsId().GetMountpoint(); fs.mountpoint() != want {
		t.Errorf("collector statted %q, want the image filesystem %q", fs.mountpoint(), want)
	}
	after := imageGCByTag(t, e)
	for _, ref := range mustGo {
		if after[ref] != nil {
			t.Errorf("unused image %s was not removed", ref)
		}
	}
	for _, ref := range []string{running, created} {
		if after[ref] == nil {
			t.Errorf("image %s, in use, was removed", ref)
		}
	}
	for ref, img := range before {
		if img.GetPinned() && after[ref] == nil {
			t.Errorf("pinned image %s was removed", ref)
		}
	}
	if out, _, code := e.exec(runID, "echo", "ok"); out != "ok\n" || code != 0 {
		t.Errorf("the running container broke: %q, exit %d", out, code)
	}

	// Below the high threshold a pass removes nothing.
	fs.set(10*unusedSize, 5*unusedSize)
	if freed, err := gc.Collect(c); freed != 0 || err != nil {
		t.Errorf("Collect at 50%% = %d, %v; want nothing", freed, err)
	}
	if again := imageGCByTag(t, e); len(again) != len(after) {
		t.Errorf("a pass below the threshold changed the images: %v, was %v", imageGCTags(again), imageGCTags(after))
	}

	// Once the pod is gone its images are unused, and go in turn.
	e.removePod(podID)
	var size uint64
	for _, ref := range []string{running, created} {
		if !after[ref].GetPinned() {
			size += after[ref].GetSize()
		}
	}
	fs.set(10*size, size)
	if freed, err := gc.Collect(c); freed != size || err != nil {
		t.Errorf("Collect after the pod's removal = %d, %v; want %d", freed, err, size)
	}
	final := imageGCByTag(t, e)
	for _, ref := range []string{running, created} {
		if final[ref] != nil && !final[ref].GetPinned() {
			t.Errorf("image %s, no longer in use, was not removed", ref)
		}
	}
}

// imageGCByTag lists berthd's images by tag.
func imageGCByTag(t *testing.T, e *env) map[string]*runtimeapi.Image {
	t.Helper()
	list, err := e.im.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*runtimeapi.Image{}
	for _, img := range list.GetImages() {
		for _, tag := range img.GetRepoTags() {
			out[tag] = img
		}
	}
	return out
}

func imageGCTags(m map[string]*runtimeapi.Image) []string {
	var tags []string
	for tag := range m {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	return tags
}

// imageGCClock stands still; its periods never end (Collect only).
type imageGCClock struct{ now time.Time }

func (c imageGCClock) Now() time.Time                     { return c.now }
func (imageGCClock) After(time.Duration) <-chan time.Time { return nil }

// imageGCFs reports the image filesystem with the size and free space it
// is set to, and remembers which mount point it was asked about.
type imageGCFs struct {
	mu                  sync.Mutex
	capacity, available uint64
	asked               string
}

func (f *imageGCFs) stats(mountpoint string) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = mountpoint
	return f.capacity, f.available, nil
}

func (f *imageGCFs) set(capacity, available uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity, f.available = capacity, available
}

func (f *imageGCFs) mountpoint() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

// imageGCLog sends the collector's log to the test's.
type imageGCLog struct{ t *testing.T }

func (l imageGCLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Logf("%s", p)
	return len(p), nil
}
