package source

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-project/berth/pkg/manifest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func podNamed(name, uid string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("u-" + uidOr(uid, name))}}
}

func uidOr(uid, name string) string {
	if uid != "" {
		return uid
	}
	return name
}

func file(path string, pods ...*v1.Pod) manifest.File { return manifest.File{Path: path, Pods: pods} }

func broken(path, msg string) manifest.File {
	return manifest.File{Path: path, Err: errors.New(path + ": " + msg)}
}

func summary(files []manifest.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		var s []string
		for _, p := range f.Pods {
			s = append(s, p.Name+"@"+string(p.UID))
		}
		if f.Err != nil {
			s = append(s, "error: "+f.Err.Error())
		}
		out[f.Path] = strings.Join(s, ", ")
	}
	return out
}

func TestMemoryKeepsTheLastValidVersion(t *testing.T) {
	m := newMemory()
	m.apply([]manifest.File{file("a", podNamed("web", "1"))})
	// Half written, then empty: the pod stays, the error is reported.
	for _, bad := range []manifest.File{broken("a", "line 3: mapping values are not allowed"), broken("a", "no pod in file")} {
		got := summary(m.apply([]manifest.File{bad}))["a"]
		if !strings.HasPrefix(got, "web@u-1, error: a: ") || !strings.Contains(got, "still running its last valid version") {
			t.Errorf("after %v: %q", bad.Err, got)
		}
	}
	// Written back whole: the same pod, no error.
	if got := summary(m.apply([]manifest.File{file("a", podNamed("web", "1"))}))["a"]; got != "web@u-1" {
		t.Errorf("written back: %q", got)
	}
	// A new valid version replaces it; removing the file forgets it.
	if got := summary(m.apply([]manifest.File{file("a", podNamed("web", "2"))}))["a"]; got != "web@u-2" {
		t.Errorf("changed: %q", got)
	}
	m.apply(nil)
	if got := summary(m.apply([]manifest.File{broken("a", "bad")}))["a"]; strings.Contains(got, "web") {
		t.Errorf("a file removed then written broken brings back its old pod: %q", got)
	}
}

func TestMemoryTheRunningDefinitionWins(t *testing.T) {
	m := newMemory()
	m.apply([]manifest.File{file("z.yaml", podNamed("web", "1"))})
	// A stray copy that sorts first does not replace the running pod.
	got := summary(m.apply([]manifest.File{file("a.yaml", podNamed("web", "2")), file("z.yaml", podNamed("web", "1"))}))
	if got["z.yaml"] != "web@u-1" || got["a.yaml"] != "error: a.yaml: pod default/web is already defined in z.yaml" {
		t.Errorf("%v", got)
	}
	// Once the owner goes, the other file's pod runs.
	got = summary(m.apply([]manifest.File{file("a.yaml", podNamed("web", "2"))}))
	if got["a.yaml"] != "web@u-2" {
		t.Errorf("%v", got)
	}
	// Two new files at once (as after a restart): the older file wins,
	// then name order.
	m = newMemory()
	older, newer := file("b.yaml", podNamed("db", "x")), file("a.yaml", podNamed("db", ""))
	older.ModTime, newer.ModTime = t0, t0.Add(time.Second)
	got = summary(m.apply([]manifest.File{newer, older}))
	if got["b.yaml"] != "db@u-x" || !strings.Contains(got["a.yaml"], "already defined in b.yaml") {
		t.Errorf("older file: %v", got)
	}
	m = newMemory()
	got = summary(m.apply([]manifest.File{file("a.yaml", podNamed("db", "")), file("b.yaml", podNamed("db", "x"))}))
	if got["a.yaml"] != "db@u-db" || !strings.Contains(got["b.yaml"], "already defined in a.yaml") {
		t.Errorf("same age: %v", got)
	}
}
