package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
)

// TestSystemdUnitVerifies: systemd-analyze accepts the unit as installed
// (berthd in /usr/local/bin, systemd's own units beside it), and refuses
// it once its binary is missing, so the check can fail.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze (Debian's systemd package, which make deps installs): %v", err)
	}
	bin, err := harness.RepoBin()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, c := range [][]string{
		{"mkdir", "-p", root + "/usr/local/bin", root + "/etc/systemd/system", root + "/usr/lib/systemd"},
		{"cp", "-a", "/usr/lib/systemd/system", root + "/usr/lib/systemd/"},
		{"cp", "../../systemd/berth.service", root + "/etc/systemd/system/"},
		{"cp", "-r", "../../systemd/berth.service.d", root + "/etc/systemd/system/"},
		{"cp", filepath.Join(bin, "berthd"), root + "/usr/local/bin/"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	verify := func() (string, error) {
		out, err := exec.Command(analyze, "verify", "--root="+root, "/etc/systemd/system/berth.service").CombinedOutput()
		return string(out), err
	}
	if out, err := verify(); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify berth.service: %v\n%s", err, out)
	}
	if err := os.Remove(root + "/usr/local/bin/berthd"); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(); err == nil || !strings.Contains(out, "/usr/local/bin/berthd") {
		t.Errorf("systemd-analyze verify without berthd: %v\n%s (want a refusal naming it)", err, out)
	}
}

// TestSystemdNotify: berthd speaks systemd's notify protocol — STATUS
// lines while it starts, READY=1 once its CRI socket serves and the agent
// has taken in its pods, WATCHDOG=1 pings at half of WATCHDOG_USEC, and
// STOPPING=1 when it is told to stop.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.Env = append(d.Env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	})
	next := func(what string) string {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(time.Minute):
			t.Fatalf("no notify message within a minute, waiting for %s", what)
			return ""
		}
	}
	var before []string
	for {
		m := next("READY=1")
		if strings.HasPrefix(m, "READY=1") {
			if !strings.Contains(m, "STATUS=serving the CRI on "+e.d.Socket+"; agent running") {
				t.Errorf("ready message %q", m)
			}
			break
		}
		before = append(before, m)
	}
	if len(before) < 3 || !strings.HasPrefix(before[0], "STATUS=") {
		t.Errorf("before READY=1: %q, want STATUS lines", before)
	}
	for range 2 {
		if m := next("WATCHDOG=1"); m != "WATCHDOG=1" {
			t.Errorf("after READY=1: %q, want watchdog pings", m)
		}
	}
	e.d.Stop()
	for {
		m := next("STOPPING=1")
		if strings.HasPrefix(m, "STOPPING=1") {
			break
		}
		if m != "WATCHDOG=1" {
			t.Errorf("while stopping: %q", m)
		}
	}
}
