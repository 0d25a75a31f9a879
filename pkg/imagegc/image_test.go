package imagegc

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNormalize(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	same := [][]string{
		{"busybox", "busybox:latest", "docker.io/library/busybox:latest", "index.docker.io/library/busybox", "library/busybox"},
		{"localhost:5000/x", "localhost:5000/x:latest"},
		{"x/a@sha256:" + hex, "docker.io/x/a@sha256:" + hex, "x/a:1@sha256:" + hex},
		{"sha256:" + hex, hex},
	}
	for _, group := range same {
		for _, ref := range group[1:] {
			if normalize(ref) != normalize(group[0]) {
				t.Errorf("normalize(%q) = %q, normalize(%q) = %q; want equal", ref, normalize(ref), group[0], normalize(group[0]))
			}
		}
	}
	different := [][2]string{
		{"busybox:1", "busybox:2"},
		{"quay.io/busybox", "busybox"},
		{"sha256:" + hex, "busybox@sha256:" + hex},
	}
	for _, p := range different {
		if normalize(p[0]) == normalize(p[1]) {
			t.Errorf("normalize(%q) = normalize(%q) = %q; want different", p[0], p[1], normalize(p[0]))
		}
	}
	for _, odd := range []string{"NOT A REF", "x@sha256:short", ""} {
		if normalize(odd) != odd {
			t.Errorf("normalize(%q) = %q, want it unchanged", odd, normalize(odd))
		}
	}
}

func TestInUseAnyState(t *testing.T) {
	a, b, c := hexID("a"), hexID("b"), hexID("c")
	ctrs := []*runtimeapi.Container{
		{Id: "1", State: runtimeapi.ContainerState_CONTAINER_CREATED, ImageRef: a},
		{Id: "2", State: runtimeapi.ContainerState_CONTAINER_EXITED, Image: &runtimeapi.ImageSpec{Image: "x/b:1"}},
		{Id: "3", State: runtimeapi.ContainerState_CONTAINER_UNKNOWN, ImageId: c},
		{Id: "4"}, // no image at all: adds nothing
	}
	u := inUseBy(ctrs)
	for _, i := range []image{img(a, 1), img(b, 1, "x/b:1"), img(c, 1)} {
		if !u.uses(i) {
			t.Errorf("%s is not in use, want in use", i.id)
		}
	}
	if d := img(hexID("d"), 1, "x/d:1"); u.uses(d) {
		t.Errorf("%s is in use, want unused", d.id)
	}
	if len(u) != 3 {
		t.Errorf("inUse = %v, want 3 names", u)
	}
}

func TestImagesFromCRI(t *testing.T) {
	got := imagesFromCRI([]*runtimeapi.Image{
		{Id: "sha256:1", RepoTags: []string{"x:1"}, RepoDigests: []string{"x@sha256:9"}, Size: 5, Pinned: true},
		{Id: ""},
		{Id: "sha256:1", Size: 7},
		{Id: "sha256:2", Size: 3},
	})
	if len(got) != 2 || got[0].id != "sha256:1" || got[0].size != 5 || !got[0].pinned || got[0].tags[0] != "x:1" || got[0].digests[0] != "x@sha256:9" || got[1].id != "sha256:2" {
		t.Errorf("imagesFromCRI = %+v", got)
	}
}
