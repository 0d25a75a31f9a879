package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namedPod is a valid manifest for pod name.
func namedPod(name string) string {
	return strings.Replace(containerYAML(""), "name: web", "name: "+name, 1)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "evil.yaml"), namedPod("evil"))

	writeFile(t, filepath.Join(dir, "a.yaml"), namedPod("web"))
	writeFile(t, filepath.Join(dir, "b.json"),
		`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api"}, "spec": {"containers": [{"name": "app", "image": "api:1"}]}}`)
	writeFile(t, filepath.Join(dir, "c.yaml"), "apiVersion: v1\nkind: Pod\n") // invalid: no name, no container
	writeFile(t, filepath.Join(dir, "d.yaml"), namedPod("db")+"---\n"+namedPod("web"))
	writeFile(t, filepath.Join(dir, "e.yaml"), "# "+strings.Repeat("x", MaxFileSize))
	if err := unix.Mkfifo(filepath.Join(dir, "f.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "real.yaml"), namedPod("cache"))
	symlink(t, filepath.Join("sub", "real.yaml"), filepath.Join(dir, "g.yaml"))
	symlink(t, filepath.Join(outside, "evil.yaml"), filepath.Join(dir, "h.yaml"))
	symlink(t, "missing.yaml", filepath.Join(dir, "i.yaml"))
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), "not: [a pod")
	writeFile(t, filepath.Join(dir, ".j.yaml.swp"), namedPod("web"))

	files := readDirWithDeadline(t, dir)

	tests := []struct {
		name string
		pods []string // when the file is valid
		err  string   // when not: in the error, after the file's path
	}{
		{name: "a.yaml", pods: []string{"web-node1"}},
		{name: "b.json", pods: []string{"api-node1"}},
		{name: "c.yaml", err: ": metadata.name: Required value"},
		{name: "d.yaml", pods: []string{"db-node1", "web-node1"}}, // a duplicate is the source's to resolve
		{name: "e.yaml", err: ": file larger than the limit of 1048576 bytes"},
		{name: "f.yaml", err: ": a fifo, not a regular file"},
		{name: "g.yaml", pods: []string{"cache-node1"}},
		{name: "h.yaml", err: ": symlink points outside the manifest directory"},
		{name: "i.yaml", err: ": resolve symlink"},
	}
	if len(files) != len(tests) {
		var names []string
		for _, f := range files {
			names = append(names, f.Path)
		}
		t.Fatalf("ReadDir returned %d files, want %d: %v", len(files), len(tests), names)
	}
	for i, tt := range tests {
		f := files[i]
		path := filepath.Join(dir, tt.name)
		if f.Path != path {
			t.Errorf("file %d: path %q, want %q", i, f.Path, path)
			continue
		}
		if tt.err != "" {
			if f.Err == nil || !strings.Contains(f.Err.Error(), path+tt.err) || f.Pods != nil {
				t.Errorf("%s: err %v, pods %v; want %q in the error and no pods", tt.name, f.Err, f.Pods, path+tt.err)
			}
			continue
		}
		if f.Err != nil {
			t.Errorf("%s: %v", tt.name, f.Err)
			continue
		}
		var got []string
		for _, p := range f.Pods {
			got = append(got, p.Name)
		}
		if strings.Join(got, ",") != strings.Join(tt.pods, ",") {
			t.Errorf("%s: pods %v, want %v", tt.name, got, tt.pods)
		}
	}
}

// readDirWithDeadline fails the test, instead of hanging it, if reading
// blocks (on a fifo).
func readDirWithDeadline(t *testing.T, dir string) []File {
	t.Helper()
	type result struct {
		files []File
		err   error
	}
	done := make(chan result, 1)
	go func() {
		files, err := ReadDir(dir, testNode)
		done <- result{files, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("ReadDir: %v", r.err)
		}
		return r.files
	case <-time.After(30 * time.Second):
		t.Fatal("ReadDir blocked")
		return nil
	}
}

func TestReadDirRelativePathIsMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "manifests", "a.yaml"), namedPod("web"))
	t.Chdir(dir)
	files, err := ReadDir("manifests", testNode)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "manifests", "a.yaml"); len(files) != 1 || files[0].Path != want || files[0].Err != nil {
		t.Errorf("files %+v, want one valid file %s", files, want)
	}
}

func TestReadDirThroughSymlinkedDirectory(t *testing.T) {
	// /etc/berth/manifests may itself be a symlink: a symlink inside it
	// to a file beside it is still inside.
	base := t.TempDir()
	real := filepath.Join(base, "real")
	writeFile(t, filepath.Join(real, "pods", "web.yaml"), namedPod("web"))
	symlink(t, real, filepath.Join(base, "link"))
	symlink(t, filepath.Join("pods", "web.yaml"), filepath.Join(real, "web.yaml"))

	files, err := ReadDir(filepath.Join(base, "link"), testNode)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Err != nil {
		t.Fatalf("files %+v, want one valid file", files)
	}
}

func TestReadDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, err := ReadDir(dir, testNode)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("ReadDir of a missing directory: err %v, want one naming %s", err, dir)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	exact := namedPod("web")
	exact += "#" + strings.Repeat("x", MaxFileSize-len(exact)-1)
	writeFile(t, filepath.Join(dir, "exact.yaml"), exact)
	writeFile(t, filepath.Join(dir, "over.yaml"), exact+"x")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		err  string // empty when the file is valid
	}{
		{"exact.yaml", ""},
		{"over.yaml", "file larger than the limit of 1048576 bytes"},
		{"sub", "a directory, not a regular file"},
		{"missing.yaml", "no such file or directory"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		f := ReadFile(path, testNode)
		switch {
		case f.Path != path:
			t.Errorf("%s: path %q", tt.name, f.Path)
		case tt.err == "" && (f.Err != nil || len(f.Pods) != 1):
			t.Errorf("%s: err %v, %d pods; want one pod", tt.name, f.Err, len(f.Pods))
		case tt.err != "" && (f.Err == nil || !strings.Contains(f.Err.Error(), path) || !strings.Contains(f.Err.Error(), tt.err)):
			t.Errorf("%s: err %v, want one naming %s with %q", tt.name, f.Err, path, tt.err)
		}
	}
}
