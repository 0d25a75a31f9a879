// Package chaos churns a real berthd with static pods while it kills
// berthd, shims and runc, makes CNI plugins fail or hang, fills the log
// filesystem and stalls the registry, and checks after every round what a
// user relies on: one live sandbox per pod, no duplicate containers, real
// exit codes, every log line once and in order, a berthd that answers;
// and at the end that nothing leaked. `make test` runs a bounded number
// of rounds; `make chaos` many more. The seed is printed, and
// -chaos.seed replays a run.
package chaos

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/test/harness"
)

var (
	rounds = flag.Int("chaos.rounds", 20, "rounds of churn and faults")
	seed   = flag.Int64("chaos.seed", 0, "random seed (0: from the clock)")
)

// busybox is the image of the pods, imported into berthd from a docker
// archive built from the host's busybox.
const busybox = "berth.test/busybox:1"

var (
	imageArchive string
	busyboxImage v1.Image
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("chaos: skipped in -short (make unit); make test runs it")
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Println("chaos: skipped, it needs root")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-chaos-images")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	imageArchive = filepath.Join(dir, "busybox.tar")
	busyboxImage, err = harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err == nil {
		err = harness.WriteDockerArchive(imageArchive, busybox, busyboxImage)
	}
	if err != nil {
		fmt.Println("chaos: build test image:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
