package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

func TestContainerLifecycleLogsAndExec(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("web")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sh", "-c", "echo hello; echo oops >&2; exec sleep 3600"}))

	st := e.status(id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING || st.GetStartedAt() == 0 {
		t.Fatalf("status = %v, want running with a start time", st)
	}
	logPath := filepath.Join(pod.GetLogDirectory(), "app", "0.log")
	if st.GetLogPath() != logPath {
		t.Errorf("log path = %q, want %q", st.GetLogPath(), logPath)
	}
	testutil.Eventually(t, "both lines in the log", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), " stdout F hello\n") && strings.Contains(string(data), " stderr F oops\n")
	})

	out, _, code := e.exec(id, "sh", "-c", "echo $((6*7)); exit 3")
	if out != "42\n" || code != 3 {
		t.Errorf("exec = %q, code %d; want \"42\\n\", code 3", out, code)
	}
	host, _, _ := e.exec(id, "hostname")
	if host != "web\n" {
		t.Errorf("hostname = %q, want web", host)
	}

	if _, err := e.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	st = e.status(id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 143 || st.GetReason() != "Error" {
		t.Errorf("after stop: state %v code %d reason %q; want exited 143 Error", st.GetState(), st.GetExitCode(), st.GetReason())
	}
	if _, err := e.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	e.removePod(podID)
}
