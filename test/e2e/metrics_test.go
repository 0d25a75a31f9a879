package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/testutil"
)

// TestMetrics: the local API's /metrics has kubelet's metrics under their
// names, with values that match what runs, and the Go and process ones.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("web.yaml", sleeperManifest("web", ""))
	e.waitPod("web", "running", running)
	var text string
	testutil.Eventually(t, "kubelet's metrics for one running pod", func() bool {
		text = e.apiText("/metrics")
		return strings.Contains(text, "\nkubelet_running_pods 1\n") &&
			strings.Contains(text, "\nkubelet_running_containers{container_state=\"running\"} 1\n") &&
			strings.Contains(text, "\nkubelet_started_containers_total{container_type=\"container\"} 1\n") &&
			strings.Contains(text, "\nkubelet_pod_start_duration_seconds_count 1\n")
	})
	for _, want := range []string{
		`kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} 1`,
		`kubelet_runtime_operations_duration_seconds_count{operation_type="create_container"} 1`,
		"go_goroutines ", "process_resident_memory_bytes ",
		"kubelet_pod_start_sli_duration_seconds_count 1",
		`kubelet_pod_worker_duration_seconds_count{operation_type="create"} `,
		"berth_shims 1", "berth_manifest_errors 0",
	} {
		if !strings.Contains(text, "\n"+want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}

	// berth's own: a manifest in error, the running container's log
	// (nothing dropped), and a static pod that came back with its UID.
	e.writeManifest("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: []}\n")
	testutil.EventuallyWithin(t, time.Minute, "the bad manifest counted and the log's dropped records reported", func() bool {
		text = e.apiText("/metrics")
		return strings.Contains(text, "\nberth_manifest_errors 1\n") &&
			strings.Contains(text, "\nberth_container_log_dropped_records_total{container=\"main\",namespace=\"default\",pod=\"web-"+e.d.NodeName+"\"} 0\n")
	})
	if err := os.Remove(filepath.Join(e.d.Manifests, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "web gone", func() bool { _, ok := e.agentPod("web"); return !ok })
	e.writeManifest("web.yaml", sleeperManifest("web", ""))
	e.waitPod("web", "running again", running)
	testutil.Eventually(t, "kubelet_restarted_pods_total", func() bool {
		return strings.Contains(e.apiText("/metrics"), "\nkubelet_restarted_pods_total{static=\"true\"} 1\n")
	})
}

// apiText reads one of the agent's API endpoints as text.
func (e *env) apiText(path string) string {
	e.t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.d.APISocket)
		},
	}}
	resp, err := client.Get("http://berth" + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	return string(body)
}
