// Package e2e runs the real berthd (bin/ of this repository, as `make`
// builds it) with real runc and CNI plugins, and drives it through a CRI
// client, as kubelet or crictl would. The tests need root.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// busybox is the test image, built once per run from the host's busybox.
const busybox = "berth.test/busybox:1"

var imageArchive string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short (make unit); make test runs it")
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, the end-to-end tests need root")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-e2e-images")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	imageArchive = filepath.Join(dir, "busybox.tar")
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err == nil {
		err = harness.WriteDockerArchive(imageArchive, busybox, img)
	}
	if err != nil {
		fmt.Println("e2e: build test image:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one berthd for one test, with the busybox image imported.
type env struct {
	t  *testing.T
	d  *harness.Daemon
	rt runtimeapi.RuntimeServiceClient
	im runtimeapi.ImageServiceClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with the daemon adjusted (flags) before it starts.
func newEnvWith(t *testing.T, configure func(*harness.Daemon)) *env {
	t.Helper()
	d, err := harness.NewDaemon()
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(d)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(d.LogPath()); err == nil {
				t.Logf("berthd log:\n%s", testutil.Tail(string(log), 60))
			}
		}
		if err := d.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, d: d, rt: d.Runtime, im: d.Images}
	e.berthctl("images", "import", imageArchive)
	return e
}

// berthctl runs the CLI against this env's daemon and returns its output.
func (e *env) berthctl(args ...string) string {
	e.t.Helper()
	out, err := exec.Command(filepath.Join(e.d.Bin, "berthctl"), append([]string{"--cri-socket", e.d.Socket, "--api-socket", e.d.APISocket}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("berthctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// restart kills berthd with SIGKILL and starts it again.
func (e *env) restart() {
	e.t.Helper()
	e.d.Kill()
	if err := e.d.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}
