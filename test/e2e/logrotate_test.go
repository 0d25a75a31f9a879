package e2e

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

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
