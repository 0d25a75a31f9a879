package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestNormalizeRef(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"busybox":                              "docker.io/library/busybox:latest",
		"busybox:1.36":                         "docker.io/library/busybox:1.36",
		"library/busybox":                      "docker.io/library/busybox:latest",
		"docker.io/busybox":                    "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox:1":    "docker.io/library/busybox:1",
		"someone/app:v2":                       "docker.io/someone/app:v2",
		"localhost:5000/x:y":                   "localhost:5000/x:y",
		"localhost:5000/x":                     "localhost:5000/x:latest",
		"localhost/x":                          "localhost/x:latest",
		"registry.k8s.io/pause:3.10":           "registry.k8s.io/pause:3.10",
		"quay.io/a/b/c":                        "quay.io/a/b/c:latest",
		"busybox@" + digest:                    "docker.io/library/busybox@" + digest,
		"busybox:1.36@" + digest:               "docker.io/library/busybox@" + digest,
		"example.com:443/team/app:1@" + digest: "example.com:443/team/app@" + digest,
	} {
		got, err := NormalizeRef(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "BusyBox", "busybox:", "a b", "busybox@sha256:abc", "http://example.com/x",
		strings.Repeat("ab", 32), digest,
	} {
		if got, err := NormalizeRef(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRef(%q) = %q, %v; want InvalidArgument", in, got, err)
		}
	}
}

// Resolution rules that need no unpacking: records are placed in memory.
func TestResolvePrefixesAndNames(t *testing.T) {
	s := openStore(t)
	shared := strings.Repeat("c", 12)
	idA := "sha256:" + shared + strings.Repeat("1", 52)
	idB := "sha256:" + shared + strings.Repeat("2", 52)
	// An image literally named like a hex prefix of another image's ID.
	idC := "sha256:" + strings.Repeat("d", 64)
	s.images[idA] = newRecord(Image{ID: idA})
	s.images[idB] = newRecord(Image{ID: idB})
	s.images[idC] = newRecord(Image{ID: idC, RepoTags: []string{"docker.io/library/" + shared + "1:latest"}})

	if _, err := s.Get(shared); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ambiguous prefix: err = %v, want InvalidArgument", err)
	}
	if got, err := s.Get(shared + "2"); err != nil || got.ID != idB {
		t.Errorf("unique prefix: %s, %v", got.ID, err)
	}
	// The name wins over the ID prefix it also is.
	if got, err := s.Get(shared + "1"); err != nil || got.ID != idC {
		t.Errorf("name that is also a prefix: %s, %v; want the named image %s", got.ID, err, idC)
	}
	if got, err := s.Get("sha256:" + shared + "1"); err != nil || got.ID != idA {
		t.Errorf("explicit sha256: prefix: %s, %v; want %s", got.ID, err, idA)
	}
}
