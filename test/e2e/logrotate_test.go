package e2e

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// TestLogRotation: a container writing as fast as it can has its log
// rotated by size in its shim (the older rotated files gzipped, the
// newest plain), every record whole, no line lost between files or
// doubled; and `berthctl logs -f`, started before, prints every line
// across the rotations. (Pruning to --container-log-max-files is
// cri/crilog's TestFileRotates.)
func TestLogRotation(t *testing.T) {
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--container-log-max-size", "64Ki", "--container-log-max-files", "100")
	})
	const n = 100000
	e.writeManifest("chatty.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "while [ ! -f /tmp/go ]; do sleep 0.1; done; seq 1 %d; echo done; exec sleep 3600"]
`, busybox, n))
	p := e.waitPod("chatty", "running", running)
	dir := filepath.Join(e.d.LogDir, fmt.Sprintf("default_%s_%s", p.Name, p.UID), "main")
	live := filepath.Join(dir, "0.log")
	follow := exec.Command(filepath.Join(e.d.Bin, "berthctl"), "--cri-socket", e.d.Socket, "--api-socket", e.d.APISocket, "logs", "-f", p.Name)
	var followed testutil.Buffer
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://")
	if _, _, code := e.exec(id, "touch", "/tmp/go"); code != 0 {
		t.Fatal("touch /tmp/go failed")
	}
	testutil.Eventually(t, "berthctl logs -f to the last line", func() bool { return strings.HasSuffix(followed.String(), "\ndone\n") })
	if got := strings.Split(strings.TrimSuffix(followed.String(), "\n"), "\n"); len(got) != n+1 {
		t.Errorf("berthctl logs -f printed %d lines, want %d", len(got), n+1)
	} else {
		for i, l := range got[:n] {
			if l != strconv.Itoa(i+1) {
				t.Fatalf("berthctl logs -f line %d is %q: a line lost or doubled at a rotation", i, l)
			}
		}
	}
	testutil.Eventually(t, "the rotated logs gzipped but the newest", func() bool {
		files, _ := filepath.Glob(live + ".*")
		gz := 0
		for _, f := range files {
			if strings.HasSuffix(f, ".gz") {
				gz++
			}
		}
		return len(files) > 10 && gz == len(files)-1
	})
	rotated, _ := filepath.Glob(live + ".*")
	slices.SortFunc(rotated, func(a, b string) int {
		return strings.Compare(strings.TrimSuffix(a, ".gz"), strings.TrimSuffix(b, ".gz"))
	})
	var lines []string
	for _, f := range append(rotated, live) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = fh
		if strings.HasSuffix(f, ".gz") {
			if r, err = gzip.NewReader(fh); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
	}
	var first int
	for i, rec := range lines {
		parts := strings.SplitN(rec, " ", 4)
		if len(parts) != 4 || parts[1] != "stdout" || parts[2] != "F" {
			t.Fatalf("record %d is not whole: %q", i, rec)
		}
		if i == len(lines)-1 {
			if parts[3] != "done" {
				t.Errorf("last record %q", rec)
			}
			break
		}
		v, err := strconv.Atoi(parts[3])
		if err != nil {
			t.Fatalf("record %d: %q", i, rec)
		}
		if i == 0 {
			first = v
		} else if v != first+i {
			t.Fatalf("record %d is %d, want %d: a line lost or doubled", i, v, first+i)
		}
	}
	if last := first + len(lines) - 2; last != n || first != 1 {
		t.Errorf("kept lines %d..%d of 1..%d: want all", first, last, n)
	}
}

// TestLogFilesystemFull: when the log filesystem fills up, a container
// writing to its log keeps running and is never blocked; the lines it
// writes meanwhile are dropped whole and counted (a metric and a line in
// berthd's log); a pod started while the disk is full runs, and gets its
// log once there is space again; and every record on disk is whole.
func TestLogFilesystemFull(t *testing.T) {
	e := newEnvWith(t, func(d *harness.Daemon) {
		mountSmallFS(t, d.LogDir, 16)
		d.AddArgs("--container-log-max-size", "1Mi", "--container-log-max-files", "2")
	})
	counter := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "i=0; while true; do echo %s-$i; i=$((i+1)); usleep 20000; done"]
`, name, busybox, name)
	}
	e.writeManifest("early.yaml", counter("early"))
	e.waitPod("early", "running", running)
	filler := filepath.Join(e.d.LogDir, "filler")
	fillDisk(t, filler)

	testutil.EventuallyWithin(t, time.Minute, "dropped records counted and logged", func() bool {
		log, _ := os.ReadFile(e.d.LogPath())
		metrics := e.apiText("/metrics")
		return strings.Contains(metrics, "berth_container_log_dropped_records_total{container=\"main\",namespace=\"default\",pod=\"early-"+e.d.NodeName+"\"} ") &&
			!strings.Contains(metrics, "pod=\"early-"+e.d.NodeName+"\"} 0\n") &&
			strings.Contains(string(log), "container log records dropped")
	})
	e.writeManifest("late.yaml", counter("late"))
	e.waitPod("late", "running while the log filesystem is full", running)
	if p, _ := e.agentPod("early"); p.Status.ContainerStatuses[0].RestartCount != 0 || p.Status.ContainerStatuses[0].State.Running == nil {
		t.Errorf("the writing container was disturbed by the full disk: %+v", p.Status.ContainerStatuses[0])
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"early", "late"} {
		testutil.Eventually(t, name+"'s log written again", func() bool {
			out, _ := exec.Command(filepath.Join(e.d.Bin, "berthctl"), "--cri-socket", e.d.Socket, "--api-socket", e.d.APISocket,
				"logs", "--tail", "1", name+"-"+e.d.NodeName).Output() // fails until the file exists
			return strings.Contains(string(out), name+"-")
		})
	}
	// Every record of every file is whole: a time, a stream, a tag.
	files, _ := filepath.Glob(filepath.Join(e.d.LogDir, "default_*", "main", "*.log*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".gz") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if !criRecord.MatchString(line) {
				t.Errorf("%s:%d is not a whole CRI log record: %q", f, i+1, line)
				break
			}
		}
	}
}

var criRecord = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] (early|late)-\d+$`)

// fillDisk writes zeros to path until its filesystem has no room left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}
