package vm

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// The specs of cri-tools' critest run on cgroup v2: resources (OOM,
// mounts, sysctls), stats and metrics, and the security context.
const critestFocus = `Security Context|Container OOM|stats|metrics|Mount Readonly|Mount Propagation|sysctls`

// critestSkip are the specs of the focus that need an image the lane does
// not build: nginx.
const critestSkip = `HostPID|HostIpc|HostNetwork`

// registriesYAML mirrors the registries critest pulls from to the
// guest's registry.
const registriesYAML = `registries:
  registry.k8s.io:
    mirrors: ["http://127.0.0.1:5000"]
  gcr.io:
    mirrors: ["http://127.0.0.1:5000"]
`

// TestCritest: critest's resource, stats and security specs pass against
// berth under systemd on cgroup v2, so that conformance holds there too.
//
// Not in make test yet: its last run here failed specs it was not meant to
// (see the note); BERTH_VM_CRITEST=1 runs it.
func TestCritest(t *testing.T) {
	skipUnlessVM(t)
	if os.Getenv("BERTH_VM_CRITEST") == "" {
		t.Skip("critest in the VM is opt-in until it passes: BERTH_VM_CRITEST=1")
	}
	g := newGuest(t, "guest-critest.sh")
	g.write("registries.yaml", registriesYAML)
	g.write("focus", critestFocus)
	g.write("skip", critestSkip)
	build := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// critest is cri-tools' test binary, of the version go.mod requires.
	build("test", "-c", "-o", filepath.Join(g.share, "critest"), "sigs.k8s.io/cri-tools/cmd/critest")
	build("build", "-o", filepath.Join(g.share, "registry"), "./registry")
	applets, err := exec.Command(harness.BusyboxBinary, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	g.critestImages(strings.Fields(string(applets)), build)
	res := g.boot()
	want(t, res, map[string]string{"registry": "0", "start": "0", "done": "yes"})
	data, err := os.ReadFile(filepath.Join(g.share, "critest.xml"))
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(g.share, "critest.log"))
		t.Fatalf("critest wrote no report (exit %s): %v\n%s", res["critest"], err, testutil.Tail(string(log), 60))
	}
	var report struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Status  string    `xml:"status,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		t.Fatalf("critest's report: %v", err)
	}
	counts := map[string]int{}
	for _, s := range report.Suites {
		for _, c := range s.Cases {
			counts[c.Status]++
			if c.Failure != nil || c.Error != nil || c.Status == "failed" || c.Status == "panicked" {
				t.Errorf("critest: %s: %s", c.Status, c.Name)
			}
		}
	}
	if counts["passed"] == 0 {
		t.Errorf("critest passed no spec: %v", counts)
	}
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(g.share, "critest.log"))
		t.Logf("critest.log:\n%s", testutil.Tail(string(log), 120))
	}
	t.Logf("critest on cgroup v2: %d passed, %d skipped (exit %s)", counts["passed"], counts["skipped"], res["critest"])
	if res["critest"] != "0" && !t.Failed() {
		t.Errorf("critest exited %s with no failed spec in its report", res["critest"])
	}
}

// critestImages writes the images the focused specs pull, as docker
// archives the guest's registry serves: busybox with every applet (the
// default test image); the nonewprivs stand-in, busybox with a setuid
// root program that prints its effective UID; and one whose /etc/group
// puts its user 1000 in group 50000.
func (g *guest) critestImages(applets []string, build func(...string)) {
	t := g.t
	t.Helper()
	bb, err := harness.BusyboxImageWith(v1.Config{Cmd: []string{"sh"}}, applets)
	if err != nil {
		t.Fatal(err)
	}
	nnpBin := filepath.Join(t.TempDir(), "nnp")
	build("build", "-o", nnpBin, "./nnp")
	nnpData, err := os.ReadFile(nnpBin)
	if err != nil {
		t.Fatal(err)
	}
	nnp, err := harness.WithFile(bb, "usr/local/bin/nnp", 0o4755, nnpData)
	if err == nil {
		nnp, err = mutate.Config(nnp, v1.Config{Entrypoint: []string{"/usr/local/bin/nnp"},
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}})
	}
	if err != nil {
		t.Fatal(err)
	}
	groups, err := harness.WithFile(bb, "etc/group", 0o644,
		[]byte("root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\ngroup-defined-in-image:x:50000:app\n"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, im := range []struct {
		ref  string
		img  v1.Image
		file string
	}{
		{"e2e-test-images/busybox:1.29-2", bb, "busybox-critest.tar"},
		{"e2e-test-images/nonewprivs:1.3", nnp, "nonewprivs.tar"},
		{"k8s-staging-cri-tools/test-image-predefined-group:latest", groups, "predefined-group.tar"},
	} {
		if err := harness.WriteDockerArchive(filepath.Join(g.share, im.file), "critest/"+im.file+":1", im.img); err != nil {
			t.Fatal(err)
		}
		args = append(args, im.ref+"=/mnt/share/"+im.file)
	}
	g.write("images", strings.Join(args, " "))
}
