package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/testutil"
)

// TestCrictl: the crictl that `make` builds drives berth as it drives
// containerd: version, pods, ps, inspect, exec and logs of a static pod;
// and the pod's log is linked in the containers/ directory beside the
// pods' logs, as kubelet links it for log shippers.
func TestCrictl(t *testing.T) {
	e := newEnv(t)
	// As `make install` writes /etc/crictl.yaml, for this daemon.
	config := filepath.Join(t.TempDir(), "crictl.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n",
		e.d.Socket, e.d.Socket), 0o644); err != nil {
		t.Fatal(err)
	}
	crictl := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(filepath.Join(e.d.Bin, "crictl"), append([]string{"--config", config}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return string(out), err
	}
	if out, err := crictl("version"); err != nil || !strings.Contains(out, "RuntimeName:  berth") {
		t.Fatalf("crictl version: %v\n%s", err, out)
	}
	e.writeManifest("hello.yaml", `apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: `+busybox+`
    command: ["sh", "-c", "echo hello from berth; exec sleep 3600"]
`)
	e.waitPod("hello", "running", running)
	pod := "hello-" + e.d.NodeName
	var podID, ctrID string
	testutil.Eventually(t, "crictl pods and ps list the pod", func() bool {
		out, err := crictl("pods", "--name", pod, "-q")
		if podID = strings.TrimSpace(out); err != nil || podID == "" {
			return false
		}
		out, err = crictl("ps", "--pod", podID, "-q")
		ctrID = strings.TrimSpace(out)
		return err == nil && ctrID != ""
	})
	out, err := crictl("inspect", ctrID)
	var inspected struct {
		Status struct {
			State    string                `json:"state"`
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"status"`
	}
	if err != nil || json.Unmarshal([]byte(out), &inspected) != nil || inspected.Status.State != "CONTAINER_RUNNING" || inspected.Status.Metadata.Name != "main" {
		t.Errorf("crictl inspect: %v %+v\n%.500s", err, inspected, out)
	}
	if out, err := crictl("exec", ctrID, "echo", "inside"); err != nil || out != "inside\n" {
		t.Errorf("crictl exec: %q, %v", out, err)
	}
	testutil.Eventually(t, "crictl logs", func() bool {
		out, err := crictl("logs", ctrID)
		return err == nil && out == "hello from berth\n"
	})
	if out, err := crictl("images", "-q"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("crictl images: %q, %v", out, err)
	}

	// Log shippers read the log through kubelet's link, which goes with
	// the pod.
	link := filepath.Join(filepath.Dir(e.d.LogDir), "containers", pod+"_default_main-"+ctrID+".log")
	if data, err := os.ReadFile(link); err != nil || !strings.Contains(string(data), " stdout F hello from berth\n") {
		t.Errorf("log through %s: %q, %v", link, data, err)
	}
	if err := os.Remove(filepath.Join(e.d.Manifests, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the log link gone with the pod", func() bool {
		_, err := os.Lstat(link)
		return os.IsNotExist(err)
	})
}
