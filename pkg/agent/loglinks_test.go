package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestLogLinks(t *testing.T) {
	links := t.TempDir()
	m := &Manager{cfg: Config{LogLinkDir: links, LogDir: "/var/log/pods", Log: slog.New(slog.DiscardHandler)}}
	v1 := "/var/log/pods/default_web_u1"
	v2 := "/var/log/pods/default_web_u2"
	m.linkLog("web", "default", "main", "c1", v1+"/main/0.log")
	m.linkLog("web", "default", "main", "c2", v2+"/main/0.log")
	m.linkLog("web", "default", "main", "c2", v2+"/main/0.log") // again: replaced, not an error
	if target, err := os.Readlink(filepath.Join(links, "web_default_main-c1.log")); err != nil || target != v1+"/main/0.log" {
		t.Fatalf("link of c1: %q, %v", target, err)
	}
	// The old version's cleanup leaves the new version's link.
	m.unlinkPodLogs("web", "default", v1)
	names := func() []string {
		entries, _ := os.ReadDir(links)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(); len(got) != 1 || got[0] != "web_default_main-c2.log" {
		t.Errorf("after the old version's cleanup: %q", got)
	}
	m.unlinkContainerLog("c2")
	if got := names(); len(got) != 0 {
		t.Errorf("after removing c2: %q", got)
	}
}
