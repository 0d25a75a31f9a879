package image

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"

	"github.com/berth-project/berth/cri/errdefs"
)

// FuzzNormalizeRef checks that every error is InvalidArgument, that a
// normalised reference is a fixed point, fully qualified and names what
// the input named, and that resolving anything in an empty store fails
// as NotFound or InvalidArgument.
func FuzzNormalizeRef(f *testing.F) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, s := range []string{
		"busybox", "busybox:1.36", "library/busybox", "docker.io/busybox", "index.docker.io/library/busybox:1",
		"someone/app:v2", "localhost:5000/x:y", "localhost/x", "registry.k8s.io/pause:3.10", "quay.io/a/b/c",
		"busybox@" + digest, "busybox:1.36@" + digest, "example.com:443/team/app:1@" + digest, "[::1]:5000/x:1",
		"", "BusyBox", "busybox:", "a b", "busybox@sha256:abc", "http://example.com/x", strings.Repeat("ab", 32), digest,
		"cafe", "sha256:" + strings.Repeat("c", 12),
	} {
		f.Add(s)
	}
	s, err := Open(filepath.Join(f.TempDir(), "images"), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Get(%q) in an empty store: %v, want NotFound or InvalidArgument", ref, err)
		}
		norm, err := NormalizeRef(ref)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("NormalizeRef(%q): %v, want InvalidArgument", ref, err)
			}
			return
		}
		if again, err := NormalizeRef(norm); err != nil || again != norm {
			t.Fatalf("NormalizeRef(%q) = %q, but NormalizeRef(%q) = %q, %v", ref, norm, norm, again, err)
		}
		if strings.HasPrefix(norm, name.DefaultRegistry+"/") {
			t.Errorf("NormalizeRef(%q) = %q: Docker Hub is spelt docker.io", ref, norm)
		}
		// Fully qualified: explicit registry, repository (with library/)
		// and tag or digest, which strict parsing demands.
		strict, err := name.ParseReference(norm, name.StrictValidation)
		if err != nil {
			t.Fatalf("NormalizeRef(%q) = %q, which is not fully qualified: %v", ref, norm, err)
		}
		orig, err := name.ParseReference(ref)
		if err != nil {
			t.Fatalf("NormalizeRef accepted %q, which does not parse: %v", ref, err)
		}
		if strict.Context().Name() != orig.Context().Name() {
			t.Errorf("NormalizeRef(%q) = %q: repository %s, want %s", ref, norm, strict.Context().Name(), orig.Context().Name())
		}
		if d, ok := orig.(name.Digest); ok && !strings.HasSuffix(norm, "@"+d.DigestStr()) {
			t.Errorf("NormalizeRef(%q) = %q lost the digest %s", ref, norm, d.DigestStr())
		}
	})
}

// FuzzLoadRegistryConfig loads arbitrary bytes as a registry
// configuration, with a second input as the content of a CA file the
// configuration may name (caFiles: [ca.pem]). Errors are InvalidArgument
// and name the file; an accepted configuration compiles to exactly what it
// says for every host, its mirrors are fixed points of parseMirror, every
// configured registry yields its endpoints, and it loads again unchanged
// when written back.
func FuzzLoadRegistryConfig(f *testing.F) {
	for _, s := range []string{
		"registries:\n  docker.io:\n    mirrors: [\"http://127.0.0.1:5000\", \"https://mirror.example.com/prefix\"]\n" +
			"  \"127.0.0.1:5000\": {insecure: true}\n  registry.example.com:\n    caFiles: [ca.pem]\n    skipVerify: true\n",
		`{"registries": {"index.docker.io": {"mirrors": ["https://mirror.example.com/cache/"]}, "[::1]:5000": {"insecure": true}}}`,
		"registries:\n  docker.io:\n    mirror: [http://x]\n",
		"registries:\n  docker.io:\n    mirrors: [\"http://x/UPPER\", \"http://x?y=1\", ftp://x, 127.0.0.1:5000]\n",
		"registries:\n  docker.io/library: {insecure: true}\n  \"x:99999\": {insecure: true}\n",
		"registries:\n  docker.io: {}\n  index.docker.io: {}\n",
		"registries:\n  x: {caFiles: [ca.pem, missing.pem, \"\"]}\n",
		"",
	} {
		f.Add([]byte(s), []byte(fuzzCA))
	}
	f.Add([]byte("registries:\n  x: {caFiles: [ca.pem]}\n"), []byte("not a certificate"))

	f.Fuzz(func(t *testing.T, data, ca []byte) {
		// CA files are read relative to a private directory: a mutated
		// absolute path must not read the host's files (or block on one).
		var loose RegistryConfig
		if yaml.Unmarshal(data, &loose) == nil {
			for _, h := range loose.Registries {
				for _, p := range h.CAFiles {
					if p != "" && !filepath.IsLocal(p) {
						return
					}
				}
			}
		}
		dir := t.TempDir()
		t.Chdir(dir)
		path := filepath.Join(dir, "registries.yaml")
		for p, content := range map[string][]byte{path: data, "ca.pem": ca} {
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := LoadRegistryConfig(path)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v: want InvalidArgument naming %s", err, path)
			}
			return
		}
		hosts, err := cfg.compile()
		if err != nil {
			t.Fatalf("loaded, but does not compile: %v", err)
		}
		for key, h := range cfg.Registries {
			hc := hosts.lookup(key)
			if hc == nil {
				t.Fatalf("registry %q is configured but not found", key)
			}
			if hc.insecure != h.Insecure || len(hc.mirrors) != len(h.Mirrors) ||
				(hc.transport != nil) != (len(h.CAFiles) > 0 || h.SkipVerify) {
				t.Errorf("registry %q: compiled to insecure %v, %d mirrors, TLS settings %v; configured %+v",
					key, hc.insecure, len(hc.mirrors), hc.transport != nil, h)
			}
			for _, m := range hc.mirrors {
				again, err := parseMirror(m.String())
				if err != nil || again.String() != m.String() {
					t.Errorf("mirror %s parses as %v, %v", m, again, err)
				}
			}
			host, _ := canonicalHostKey(key)
			if norm, err := NormalizeRef(host + "/team/app:1"); err == nil {
				eps, err := hosts.endpoints(norm)
				if err != nil || len(eps) != len(hc.mirrors)+1 {
					t.Errorf("registry %q: endpoints of %s: %d, %v; want %d", key, norm, len(eps), err, len(hc.mirrors)+1)
				}
			}
		}
		written, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, written, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := LoadRegistryConfig(path)
		if err != nil {
			t.Fatalf("written back, refused: %v\n%s", err, written)
		}
		if again, _ := yaml.Marshal(back); !bytes.Equal(again, written) {
			t.Errorf("written back and loaded again:\n%s\nwas:\n%s", again, written)
		}
	})
}

// fuzzFileLimit caps the size of every file FuzzImport's process writes
// (RLIMIT_FSIZE): far above anything an input of the fuzzer's size can
// honestly unpack to, so that an archive that expands without bound fails
// with EFBIG instead of filling the disk.
const fuzzFileLimit = 256 << 20

// FuzzImport imports arbitrary bytes as an image archive into a store in a
// temporary directory. A failed import is InvalidArgument and leaves the
// store as it was; a successful one stores images whose names are
// normalised and whose layers are all on disk, and importing the same
// archive again changes nothing. Nothing is ever written beside the store.
func FuzzImport(f *testing.F) {
	for _, seed := range fuzzArchives(f) {
		f.Add(seed)
	}
	limitFileSize(f, fuzzFileLimit)
	root := os.Geteuid() == 0

	f.Fuzz(func(t *testing.T, archive []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "archive.tar")
		if err := os.WriteFile(path, archive, 0o600); err != nil {
			t.Fatal(err)
		}
		outside := filepath.Join(dir, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := Open(filepath.Join(dir, "store"), nil)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := s.Import(path)
		defer func() {
			if n := dirNames(t, outside); len(n) != 0 {
				t.Errorf("the import wrote %v outside the store", n)
			}
			if n := dirNames(t, dir); !slices.Equal(n, []string{"archive.tar", "outside", "store"}) {
				t.Errorf("the import left %v beside the store", n)
			}
		}()
		if err != nil {
			switch {
			case errors.Is(err, syscall.EFBIG):
				t.Fatalf("an archive of %d bytes unpacks to a file over %d bytes: %v", len(archive), fuzzFileLimit, err)
			case !root && errors.Is(err, fs.ErrPermission):
				// Unpacking layers sets ownership and makes devices.
			case !errors.Is(err, errdefs.ErrInvalidArgument):
				t.Errorf("Import: %v, want InvalidArgument", err)
			}
			assertClean(t, s)
			return
		}
		checkImported(t, s, imgs)
		again, err := s.Import(path)
		if err != nil {
			t.Fatalf("imported once, not twice: %v", err)
		}
		if !slices.EqualFunc(again, imgs, func(a, b Image) bool { return a.ID == b.ID }) || len(s.List()) != len(imgs) {
			t.Errorf("importing again gave %d images (%d stored), first %d", len(again), len(s.List()), len(imgs))
		}
	})
}

// checkImported checks what Import promises of the images it returns.
func checkImported(t *testing.T, s *Store, imgs []Image) {
	t.Helper()
	if len(imgs) == 0 {
		t.Fatal("Import succeeded without an image")
	}
	tags := map[string]string{}
	for _, img := range s.List() {
		for _, tag := range img.RepoTags {
			if other, ok := tags[tag]; ok {
				t.Errorf("tag %s is on %s and %s", tag, other, img.ID)
			}
			tags[tag] = img.ID
		}
	}
	for _, img := range imgs {
		if !validDigest(img.ID) {
			t.Errorf("image ID %q", img.ID)
		}
		if _, err := s.Get(img.ID); err != nil {
			t.Errorf("imported image %s: %v", img.ID, err)
		}
		for _, n := range slices.Concat(img.RepoTags, img.RepoDigests) {
			if norm, err := NormalizeRef(n); err != nil || norm != n {
				t.Errorf("image %s: name %q is not normalised (%q, %v)", img.ID, n, norm, err)
			}
		}
		dirs, err := s.LayerDirs(img.ID)
		if err != nil {
			t.Errorf("image %s: %v", img.ID, err)
		}
		for _, d := range dirs {
			if filepath.Dir(d) != s.layersDir() {
				t.Errorf("image %s: layer %s outside the store", img.ID, d)
			}
		}
	}
	if n := dirNames(t, s.tmpDir()); len(n) != 0 {
		t.Errorf("tmp/ holds %v after an import", n)
	}
}

// limitFileSize sets RLIMIT_FSIZE for the rest of the fuzz target. Go
// ignores SIGXFSZ, so writes past it fail with EFBIG.
func limitFileSize(f *testing.F, limit uint64) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		f.Fatal(err)
	}
	if old.Cur != unix.RLIM_INFINITY && old.Cur < limit {
		return
	}
	lim := old
	lim.Cur = limit
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_FSIZE, &old) })
}

// fuzzArchives are seeds for FuzzImport: a docker archive (plain and
// gzipped) and an OCI layout (the image, and an index holding it) of a
// one-layer image, and archives that must be refused.
func fuzzArchives(f *testing.F) [][]byte {
	// A directory, a file, a symlink and a hard link.
	img := buildImage(f, v1.Config{}, layerOf(f, dir("etc/"), file("etc/hello", "hello\n"), symlink("bin", "usr/bin"), hardlink("etc/hi", "etc/hello")))
	var docker bytes.Buffer
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{
		name.MustParseReference("busybox:1.36"):       img,
		name.MustParseReference("localhost:5000/x:y"): img,
	}, &docker); err != nil {
		f.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(docker.Bytes())
	zw.Close()

	tree := f.TempDir()
	p, err := layout.Write(tree, empty.Index)
	if err != nil {
		f.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		annotationContainerdName: "docker.io/library/app:1",
		annotationRefName:        "1",
	})); err != nil {
		f.Fatal(err)
	}
	// A multi-platform image: an index nesting this platform's image.
	multi := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
		Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	if err := p.AppendIndex(multi, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/multi:2"})); err != nil {
		f.Fatal(err)
	}
	oci, err := os.ReadFile(tarDir(f, tree))
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{
		docker.Bytes(),
		zipped.Bytes(),
		oci,
		tarBytes(f, file("manifest.json", `[{"Config":"missing.json","RepoTags":["x:1"],"Layers":["../../outside/l.tar"]}]`)),
		tarBytes(f, file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`)),
		tarBytes(f, file("../outside/x", "escape")),
		tarBytes(f, symlink("blobs", "../../outside"), file("blobs/x", "through a symlink")),
		tarBytes(f, hardlink("a", "/etc/passwd")),
	}
}

// fuzzCA is a self-signed CA certificate whose key was thrown away: a
// CA file LoadRegistryConfig accepts (only parsed, never used to verify).
const fuzzCA = `-----BEGIN CERTIFICATE-----
MIIBhDCCASugAwIBAgIUFPVmfY71tmLQ4LXwLtXYXG5GRCgwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNYmVydGggZnV6eiBDQTAeFw0yNjEyMDcxMjM5NTlaFw0yNjEy
MDgxMjM5NTlaMBgxFjAUBgNVBAMMDWJlcnRoIGZ1enogQ0EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASS4rMxsEDUibX7c4cd4C4jMMyM6S1aZ4Y/OD6raHdHdQNj
sAJxnwlR88bvBItO+9sufIXqaMDosHXA9xbNWF9ko1MwUTAdBgNVHQ4EFgQUS50K
8xKqsT9/XMAQ1X+BYPKYq+cwHwYDVR0jBBgwFoAUS50K8xKqsT9/XMAQ1X+BYPKY
q+cwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiB7hml7UZxKjoCN
mlnrpQfidnQtPk/1Oo5E/b5YpuvsKgIgeu1Dv73Ia4h4w+XEK1Y1CHETCPPDYTpa
BaUAZVPCxE4=
-----END CERTIFICATE-----
`
