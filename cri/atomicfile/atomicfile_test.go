package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSONRoundTripAndNoLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	type rec struct{ N int }
	for i := range 3 {
		if err := WriteJSON(path, rec{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	var got rec
	if err := ReadJSON(path, &got); err != nil || got.N != 2 {
		t.Fatalf("ReadJSON = %+v, %v; want N=2", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only state.json", len(entries))
	}
}

func TestReadJSONMissing(t *testing.T) {
	var v struct{}
	err := ReadJSON(filepath.Join(t.TempDir(), "nope"), &v)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestRemoveAllIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists", dir)
	}
}
