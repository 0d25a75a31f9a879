package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-project/berth/pkg/upstream"
)

func TestWriteAtomically(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	v1 := []upstream.File{{Path: "a", Data: []byte("1"), Mode: 0o644}, {Path: "sub/b", Data: []byte("2"), Mode: 0o600}}
	if err := writeAtomically(dir, v1); err != nil {
		t.Fatal(err)
	}
	if read("a") != "1" || read("sub/b") != "2" {
		t.Fatalf("files a=%q sub/b=%q", read("a"), read("sub/b"))
	}
	if fi, err := os.Stat(filepath.Join(dir, "sub/b")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("sub/b mode %v, %v", fi.Mode(), err)
	}
	first, _ := os.Readlink(filepath.Join(dir, dataLink))

	// The same content: nothing rewritten.
	if err := writeAtomically(dir, v1); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataLink)); again != first {
		t.Errorf("unchanged content swapped %s for %s", first, again)
	}

	// New content: every file switches at once; a key that went is gone,
	// and so is the old version.
	v2 := []upstream.File{{Path: "a", Data: []byte("one"), Mode: 0o644}, {Path: "c", Data: []byte("3"), Mode: 0o644}}
	if err := writeAtomically(dir, v2); err != nil {
		t.Fatal(err)
	}
	if read("a") != "one" || read("c") != "3" {
		t.Errorf("after the update a=%q c=%q", read("a"), read("c"))
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("sub still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("old version %s still there: %v", first, err)
	}
}
