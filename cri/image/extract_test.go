package image

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// Hostile layers: each must be refused with InvalidArgument naming the
// entry, and nothing may be written outside the store.
func TestImportRejectsEscapingLayers(t *testing.T) {
	requiresRoot(t)
	for _, tc := range []struct {
		name    string
		entries func(outside string) []entry
		want    string
	}{
		{"dot-dot entry", func(string) []entry {
			return []entry{file("ok", "fine"), file("../evil", "x")}
		}, `"../evil"`},
		{"dot-dot inside a path", func(string) []entry {
			return []entry{dir("a/"), file("a/../../evil", "x")}
		}, `"a/../../evil"`},
		{"absolute symlink escape", func(outside string) []entry {
			return []entry{symlink("esc", outside), file("esc/pwned", "x")}
		}, `"esc/pwned"`},
		{"relative symlink escape", func(outside string) []entry {
			return []entry{symlink("up", strings.Repeat("../", 20)+strings.TrimPrefix(outside, "/")), file("up/pwned", "x")}
		}, `"up/pwned"`},
		{"symlink replacing a checked dir", func(outside string) []entry {
			return []entry{dir("d/"), file("d/x", "x"), symlink("d", outside), file("d/pwned", "x")}
		}, `"d/pwned"`},
		{"hard link leaving the layer", func(string) []entry {
			return []entry{hardlink("hl", "../../../../etc/passwd")}
		}, `"hl"`},
		{"hard link to a host path", func(string) []entry {
			return []entry{hardlink("hl", "/etc/passwd")}
		}, "not in the archive"},
		{"hard link through a symlink", func(outside string) []entry {
			return []entry{symlink("esc", outside), hardlink("hl", "esc/secret")}
		}, `"hl"`},
		{"whiteout of dot-dot", func(string) []entry {
			return []entry{dir("a/"), file("a/.wh..", "")}
		}, "whiteout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sandbox := t.TempDir() // holds the store and the "outside"
			outside := filepath.Join(sandbox, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(filepath.Join(sandbox, "store"), nil)
			if err != nil {
				t.Fatal(err)
			}
			img := buildImage(t, v1.Config{}, layerOf(t, tc.entries(outside)...))
			_, err = s.Import(writeDockerArchive(t, map[string]v1.Image{"evil:1": img}))
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("err = %q, want it to name the layer and mention %s", err, tc.want)
			}
			assertClean(t, s)
			assertNothingNamed(t, sandbox, "evil", "pwned")
			if n := dirNames(t, outside); len(n) != 1 {
				t.Errorf("outside dir now holds %v", n)
			}
		})
	}
}

// assertNothingNamed walks root for files with the given names.
func assertNothingNamed(t *testing.T, root string, names ...string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, n := range names {
			if d.Name() == n {
				t.Errorf("%s was written", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sandbox's parent (the shared temp dir) must not have gained them either.
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(filepath.Dir(root), n)); err == nil {
			t.Errorf("%s written next to the sandbox", n)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a/b":    "a/b",
		"./a/b/": "a/b",
		"/abs/x": "abs/x",
		"//x":    "x",
		"./":     ".",
		"":       ".",
		"a/./b":  "a/b",
		"..":     "",
		"a/../b": "",
		"../x":   "",
		"a\x00b": "",
	} {
		got, ok := cleanName(in)
		if want == "" {
			if ok {
				t.Errorf("cleanName(%q) = %q, want refusal", in, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// Later entries replace earlier ones, as in tar, without following links.
func TestLayerEntriesReplaceEarlierOnes(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, v1.Config{}, layerOf(t,
		symlink("link", outside), file("link", "replaced"), // a file over a symlink
		dir("d/"), file("d/x", "x"), file("d", "now a file"), // a file over a dir
		file("f", "old"), file("f", "new"),
	))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"r:1": img}))
	dirs, err := s.LayerDirs("r:1")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"link": "replaced", "d": "now a file", "f": "new"} {
		if b, err := os.ReadFile(filepath.Join(dirs[0], p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "host" {
		t.Errorf("file behind the replaced symlink was written: %q", b)
	}
}
