package vm

import (
	"encoding/xml"
	"fmt"
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
func TestCritest(t *testing.T) {
	skipUnlessVM(t)
	g := newGuest(t, "guest-critest.sh")
	g.write("registries.yaml", registriesYAML)
	g.write("focus", critestFocus)
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
	// critest runs its specs on parallel nodes through ginkgo's CLI: most
	// of a spec's time under emulation is waiting on its polls.
	build("build", "-o", filepath.Join(g.share, "ginkgo"), "github.com/onsi/ginkgo/v2/ginkgo")
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
// default test image, see withExecShell); the nonewprivs stand-in, busybox with a setuid
// root program that prints its effective UID; the nginx stand-in, a
// program that passes for nginx's master process; and one whose user
// 1000 is in group 50000 by its /etc/group.
func (g *guest) critestImages(applets []string, build func(...string)) {
	t := g.t
	t.Helper()
	bb, err := harness.BusyboxImageWith(v1.Config{Cmd: []string{"sh"}}, applets)
	if err != nil {
		t.Fatal(err)
	}
	bb = g.withExecShell(bb)
	nnp := g.withProgram(bb, build, "./nnp", "usr/local/bin/nnp", 0o4755, v1.Config{Entrypoint: []string{"/usr/local/bin/nnp"}})
	nginx := g.withProgram(bb, build, "./nginx", "usr/sbin/nginx", 0o755, v1.Config{Cmd: []string{"/usr/sbin/nginx"}})
	// As cri-tools' image: default-user (1000:1000) in one more group,
	// group-defined-in-image (50000), and no other.
	groups, err := harness.WithFile(bb, "etc/passwd", 0o644,
		[]byte("root:x:0:0:root:/root:/bin/sh\ndefault-user:x:1000:1000::/home/default-user:/bin/sh\n"))
	if err == nil {
		groups, err = harness.WithFile(groups, "etc/group", 0o644,
			[]byte("root:x:0:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	}
	if err == nil {
		groups, err = mutate.Config(groups, v1.Config{Cmd: []string{"sh"}, User: "1000",
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}})
	}
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
		{"e2e-test-images/nginx:1.14-2", nginx, "nginx.tar"},
		{"k8s-staging-cri-tools/test-image-predefined-group:latest", groups, "predefined-group.tar"},
	} {
		if err := harness.WriteDockerArchive(filepath.Join(g.share, im.file), "critest/"+im.file+":1", im.img); err != nil {
			t.Fatal(err)
		}
		args = append(args, im.ref+"=/mnt/share/"+im.file)
	}
	g.write("images", strings.Join(args, " "))
}

// withProgram adds the program the package pkg builds to bb at path,
// with cfg (and the usual PATH) as the image's config.
func (g *guest) withProgram(bb v1.Image, build func(...string), pkg, path string, mode int64, cfg v1.Config) v1.Image {
	t := g.t
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(path))
	build("build", "-o", bin, pkg)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := harness.WithFile(bb, path, mode, data)
	if err == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		img, err = mutate.Config(img, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withExecShell gives the busybox image the shell of critest's: Debian's
// dynamic busybox, whose sh executes a command's file where busybox-static's
// runs its own applet (so that a masked /bin/ls would still list), and
// util-linux's ipcs, which busybox-static lacks; each with the shared
// libraries ldd names, at the same paths.
func (g *guest) withExecShell(bb v1.Image) v1.Image {
	t := g.t
	t.Helper()
	dir := t.TempDir()
	version, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "busybox-static").Output()
	if err != nil {
		t.Fatalf("busybox-static's version: %v", err)
	}
	download := func() error {
		cmd := exec.Command("apt-get", "download", "-q", "busybox="+string(version))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download busybox=%s: %v\n%s", version, err, out)
		}
		return nil
	}
	if err := download(); err != nil {
		// The package lists may be older than the version installed.
		if out, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			t.Fatalf("%v; apt-get update: %v\n%s", err, uerr, out)
		}
		if err := download(); err != nil {
			t.Fatal(err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download busybox left %v", debs)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "pkg")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	dyn := filepath.Join(dir, "pkg", "bin", "busybox")
	files := map[string]string{"bin/sh": dyn, "bin/ash": dyn, "usr/bin/ipcs": "/usr/bin/ipcs"}
	for _, bin := range []string{dyn, "/usr/bin/ipcs"} {
		out, err := exec.Command("ldd", bin).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				files[strings.TrimPrefix(f[2], "/")] = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				files[strings.TrimPrefix(f[0], "/")] = f[0]
			}
		}
	}
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err == nil {
			bb, err = harness.WithFile(bb, dst, 0o755, data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return bb
}
