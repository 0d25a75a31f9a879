package image

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

const pauseRef = "berth.local/pause:builtin"

var pauseConfig = v1.Config{Entrypoint: []string{"/pause"}}

func TestEnsureBuiltin(t *testing.T) {
	requiresRoot(t)
	files := map[string][]byte{"pause": []byte("#!pause v1\n"), "etc/berth/version": []byte("1\n")}
	s := openStore(t)
	img, err := s.EnsureBuiltin(pauseRef, files, pauseConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Pinned || !slices.Equal(img.RepoTags, []string{pauseRef}) || !slices.Equal(img.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("EnsureBuiltin = %+v", img)
	}

	// Deterministic: again, and in another store, the same ID.
	again, err := s.EnsureBuiltin(pauseRef, files, pauseConfig)
	if err != nil || again.ID != img.ID {
		t.Errorf("second EnsureBuiltin = %s, %v; want %s", again.ID, err, img.ID)
	}
	other, err := openStore(t).EnsureBuiltin(pauseRef, files, pauseConfig)
	if err != nil || other.ID != img.ID {
		t.Errorf("EnsureBuiltin in a fresh store = %s, %v; want %s", other.ID, err, img.ID)
	}

	dirs, err := s.LayerDirs(pauseRef)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	for p, body := range files {
		full := filepath.Join(dirs[0], p)
		st := lstat(t, full)
		if st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %o owner %d:%d, want 755 root", p, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if b, _ := os.ReadFile(full); string(b) != string(body) {
			t.Errorf("%s = %q", p, b)
		}
	}
	if st := lstat(t, filepath.Join(dirs[0], "etc/berth")); st.Mode&0o777 != 0o755 {
		t.Errorf("etc/berth mode %o", st.Mode&0o777)
	}

	// Pinned: not removable by tag or ID, until unpinned.
	for _, ref := range []string{pauseRef, img.ID} {
		err := s.Remove(ref, nil)
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "pinned") {
			t.Errorf("Remove(%s) = %v, want FailedPrecondition saying pinned", ref, err)
		}
	}

	// A new pause binary makes a new image; the old one loses its tag and
	// pin, so garbage collection may remove it.
	files["pause"] = []byte("#!pause v2\n")
	newer, err := s.EnsureBuiltin(pauseRef, files, pauseConfig)
	if err != nil || newer.ID == img.ID || !newer.Pinned {
		t.Fatalf("EnsureBuiltin with new files = %+v, %v", newer, err)
	}
	old, err := s.Get(img.ID)
	if err != nil || old.Pinned || len(old.RepoTags) != 0 {
		t.Errorf("old builtin: %+v, %v; want untagged and unpinned", old, err)
	}
	if err := s.Remove(img.ID, nil); err != nil {
		t.Errorf("Remove(old builtin) = %v", err)
	}
}

func TestEnsureBuiltinRejectsBadInput(t *testing.T) {
	s := openStore(t)
	for name, tc := range map[string]struct {
		ref   string
		files map[string][]byte
	}{
		"digest ref":    {"x@sha256:" + strings.Repeat("a", 64), map[string][]byte{"pause": nil}},
		"no files":      {pauseRef, nil},
		"escaping path": {pauseRef, map[string][]byte{"../pause": nil}},
		"unclean path":  {pauseRef, map[string][]byte{"a//b": nil}},
		"file and dir":  {pauseRef, map[string][]byte{"a": nil, "a/b": nil}},
		"given twice":   {pauseRef, map[string][]byte{"a": nil, "/a": nil}},
		"empty path":    {pauseRef, map[string][]byte{"": nil}},
		"bad reference": {"Bad Ref", map[string][]byte{"pause": nil}},
	} {
		if _, err := s.EnsureBuiltin(tc.ref, tc.files, pauseConfig); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want InvalidArgument", name, err)
		}
	}
	assertNoLeftovers(t, s)
}
