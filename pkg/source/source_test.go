package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-project/berth/pkg/manifest"
)

const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  containers: [{name: c, image: busybox:1}]\n"

// TestRunFollowsTheDirectory: every add, rename and removal reaches the
// agent as a full, current listing.
func TestRunFollowsTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests") // created by Run
	updates := make(chan []string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Dir{Path: dir, NodeName: "n1", Resync: time.Hour}.Run(ctx, func(files []manifest.File) {
			var names []string
			for _, f := range files {
				for _, p := range f.Pods {
					names = append(names, filepath.Base(f.Path)+":"+p.Name)
				}
				if f.Err != nil {
					names = append(names, filepath.Base(f.Path)+":invalid")
				}
			}
			updates <- names
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	expect := func(want ...string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case got := <-updates:
				if slices.Equal(got, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no update listing %v", want)
			}
		}
	}
	expect() // the first, empty reading
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", fmt.Sprintf(pod, "a"))
	expect("a.yaml:a-n1")
	write(".hidden.yaml", fmt.Sprintf(pod, "h"))
	write("b.yaml", "kind: Nope\n")
	expect("a.yaml:a-n1", "b.yaml:invalid")
	if err := os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	expect("b.yaml:invalid", "c.yaml:a-n1")
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	expect("c.yaml:a-n1")
}

// TestRunFollowsAReplacedDirectory: a directory swapped for another (as
// configuration tools do) is read and watched again from the next resync.
func TestRunFollowsAReplacedDirectory(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "manifests")
	updates := make(chan int, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Dir{Path: dir, NodeName: "n1", Resync: 50 * time.Millisecond}.Run(ctx, func(files []manifest.File) {
			updates <- len(files)
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case got := <-updates:
				if got == n {
					return
				}
			case <-deadline:
				t.Fatalf("no update with %d files", n)
			}
		}
	}
	waitFor(0)
	next := filepath.Join(base, "next")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next, "a.yaml"), []byte(fmt.Sprintf(pod, "a")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	waitFor(1)
	// And it goes on being followed.
	if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(fmt.Sprintf(pod, "b")), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
}
