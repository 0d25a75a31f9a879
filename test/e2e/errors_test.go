package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// wantCode checks that err carries code and a message containing want.
func wantCode(t *testing.T, what string, err error, code codes.Code, want string) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want code %v", what, err, code)
		return
	}
	if !strings.Contains(status.Convert(err).Message(), want) {
		t.Errorf("%s: message %q does not mention %q", what, status.Convert(err).Message(), want)
	}
}

func TestBadRequestsGetTheRightCodes(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	const unknown = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	_, err := e.rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: unknown})
	wantCode(t, "ContainerStatus of unknown ID", err, codes.NotFound, unknown)
	_, err = e.rt.PodSandboxStatus(c, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: unknown})
	wantCode(t, "PodSandboxStatus of unknown ID", err, codes.NotFound, unknown)
	_, err = e.rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: unknown})
	wantCode(t, "StartContainer of unknown ID", err, codes.NotFound, unknown)
	_, err = e.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: unknown, Cmd: []string{"true"}})
	wantCode(t, "ExecSync in unknown ID", err, codes.NotFound, unknown)
	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: unknown, Config: containerConfig("x", []string{"true"})})
	wantCode(t, "CreateContainer in unknown sandbox", err, codes.NotFound, unknown)

	// Stop and Remove are idempotent: unknown IDs are success.
	if _, err := e.rt.StopContainer(c, &runtimeapi.StopContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("StopContainer of unknown ID: %v", err)
	}
	if _, err := e.rt.RemoveContainer(c, &runtimeapi.RemoveContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("RemoveContainer of unknown ID: %v", err)
	}
	if _, err := e.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("StopPodSandbox of unknown ID: %v", err)
	}
	if _, err := e.rt.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("RemovePodSandbox of unknown ID: %v", err)
	}

	_, err = e.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{})
	wantCode(t, "RunPodSandbox without config", err, codes.InvalidArgument, "config")
	bad := e.podConfig("noname")
	bad.Metadata.Name = ""
	_, err = e.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: bad})
	wantCode(t, "RunPodSandbox without a name", err, codes.InvalidArgument, "metadata.name")
	_, err = e.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: e.podConfig("h"), RuntimeHandler: "kata"})
	wantCode(t, "RunPodSandbox with unknown handler", err, codes.InvalidArgument, "kata")

	pod := e.podConfig("errors")
	podID := e.runPod(pod)
	_, err = e.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: pod})
	wantCode(t, "RunPodSandbox with a name in use", err, codes.AlreadyExists, "errors")

	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("", []string{"true"})})
	wantCode(t, "CreateContainer without a name", err, codes.InvalidArgument, "metadata.name")
	noImage := containerConfig("noimage", []string{"true"})
	noImage.Image.Image = "berth.test/absent:1"
	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: noImage})
	wantCode(t, "CreateContainer with an absent image", err, codes.NotFound, "berth.test/absent:1")
	escape := containerConfig("escape", []string{"true"})
	escape.LogPath = "../../../etc/evil.log"
	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: escape})
	wantCode(t, "CreateContainer with an escaping log path", err, codes.InvalidArgument, "log_path")

	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))
	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("app", []string{"true"})})
	wantCode(t, "CreateContainer with a name in use", err, codes.AlreadyExists, "app")
	_, err = e.rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: id})
	wantCode(t, "StartContainer twice", err, codes.FailedPrecondition, "running")
	_, err = e.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: id})
	wantCode(t, "ExecSync without a command", err, codes.InvalidArgument, "cmd")

	_, err = e.rt.UpdateContainerResources(c, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id})
	wantCode(t, "UpdateContainerResources without resources", err, codes.InvalidArgument, "linux")
	_, err = e.rt.Attach(c, &runtimeapi.AttachRequest{ContainerId: id})
	wantCode(t, "Attach without streams", err, codes.InvalidArgument, "stdin, stdout and stderr")
	_, err = e.im.PullImage(c, &runtimeapi.PullImageRequest{})
	wantCode(t, "PullImage without an image", err, codes.InvalidArgument, "image")

	if _, err := e.rt.StopContainer(c, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	_, err = e.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}})
	wantCode(t, "ExecSync in an exited container", err, codes.FailedPrecondition, "exited")
	_, err = e.rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: id})
	wantCode(t, "StartContainer of an exited container", err, codes.FailedPrecondition, "exited")
	e.removePod(podID)
	_, err = e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("late", []string{"true"})})
	wantCode(t, "CreateContainer in a removed sandbox", err, codes.NotFound, podID)
}

func TestCreateInStoppedSandboxFails(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("stopped")
	podID := e.runPod(pod)
	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig("x", []string{"true"})})
	wantCode(t, "CreateContainer in a stopped sandbox", err, codes.FailedPrecondition, "not ready")
}

func TestRuntimeInfo(t *testing.T) {
	e := newEnv(t)
	v, err := e.rt.Version(ctx(t), &runtimeapi.VersionRequest{})
	if err != nil || v.GetRuntimeName() != "berth" || v.GetRuntimeApiVersion() != "v1" {
		t.Errorf("Version = %v, %v", v, err)
	}
	rc, err := e.rt.RuntimeConfig(ctx(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig = %v, %v; want cgroupfs", rc, err)
	}
}

// TestHostileRequestsAreBounded: what the Kubernetes API server would
// never send is refused with InvalidArgument naming the field (not
// Internal from runc, nor Unavailable from a CNI plugin, which tell
// clients to retry), and the listings keep working for every client.
func TestHostileRequestsAreBounded(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	huge := strings.Repeat("x", 5<<20)
	for _, tc := range []struct {
		name  string
		bad   func(*runtimeapi.PodSandboxConfig)
		field string
	}{
		{"5 MiB annotation", func(p *runtimeapi.PodSandboxConfig) { p.Annotations = map[string]string{"a": huge} }, "config.annotations"},
		{"5 MiB label", func(p *runtimeapi.PodSandboxConfig) { p.Labels = map[string]string{"a": huge} }, "config.labels"},
		{"300-character hostname", func(p *runtimeapi.PodSandboxConfig) { p.Hostname = strings.Repeat("h", 300) }, "config.hostname"},
		{"hostname with a newline", func(p *runtimeapi.PodSandboxConfig) { p.Hostname = "a\nb" }, "config.hostname"},
		{"name with a NUL", func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name = "a\x00b" }, "config.metadata.name"},
		{"name with ..", func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Name = "../../etc" }, "config.metadata.name"},
		{"namespace of 1000 characters", func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Namespace = strings.Repeat("n", 1000) }, "config.metadata.namespace"},
		{"uid with a /", func(p *runtimeapi.PodSandboxConfig) { p.Metadata.Uid = "a/b" }, "config.metadata.uid"},
	} {
		cfg := e.podConfig("hostile")
		tc.bad(cfg)
		_, err := e.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		wantCode(t, "RunPodSandbox with a "+tc.name, err, codes.InvalidArgument, tc.field)
	}

	pod := e.podConfig("bounded")
	podID := e.runPod(pod)
	for _, tc := range []struct {
		name  string
		bad   func(*runtimeapi.ContainerConfig)
		field string
	}{
		{"5 MiB annotation", func(cc *runtimeapi.ContainerConfig) { cc.Annotations = map[string]string{"a": huge} }, "config.annotations"},
		{"5 MiB environment", func(cc *runtimeapi.ContainerConfig) {
			cc.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte(huge)}}
		}, "config.envs"},
		{"5 MiB command", func(cc *runtimeapi.ContainerConfig) { cc.Args = []string{huge} }, "config.command and args"},
		{"NUL in an argument", func(cc *runtimeapi.ContainerConfig) { cc.Args = []string{"a\x00b"} }, "config.command and args"},
		{"env name with =", func(cc *runtimeapi.ContainerConfig) {
			cc.Envs = []*runtimeapi.KeyValue{{Key: "A=B", Value: []byte("c")}}
		}, "config.envs[0]"},
		{"name with a newline", func(cc *runtimeapi.ContainerConfig) { cc.Metadata.Name = "a\nb" }, "config.metadata.name"},
	} {
		cc := containerConfig("hostile", []string{"true"})
		tc.bad(cc)
		_, err := e.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
		wantCode(t, "CreateContainer with a "+tc.name, err, codes.InvalidArgument, tc.field)
	}
	// Within the bounds: annotations up to the API server's 256 KiB.
	big := e.podConfig("big-annotations")
	big.Annotations = map[string]string{"a": strings.Repeat("y", 200<<10)}
	e.runPod(big)
	if resp, err := e.rt.ListPodSandbox(c, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(resp.GetItems()) != 2 {
		t.Errorf("ListPodSandbox: %d items, %v; want both pods", len(resp.GetItems()), err)
	}
}

// TestTerminalAndExitedPID: a container with a terminal gets TERM=xterm
// (unless it sets one), as with containerd; once it has exited, its
// verbose status reports no PID, which by then may be anyone's.
func TestTerminalAndExitedPID(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)
	pod := e.podConfig("tty")
	podID := e.runPod(pod)
	tty := containerConfig("tty", []string{"sleep", "3600"})
	tty.Tty = true
	ttyID := e.start(podID, pod, tty)
	plain := e.start(podID, pod, containerConfig("plain", []string{"sleep", "3600"}))
	own := containerConfig("own", []string{"sleep", "3600"})
	own.Tty = true
	own.Envs = []*runtimeapi.KeyValue{{Key: "TERM", Value: []byte("vt100")}}
	ownID := e.start(podID, pod, own)
	for id, want := range map[string]string{ttyID: "xterm", plain: "", ownID: "vt100"} {
		resp, err := e.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo -n $TERM"}, Timeout: 10})
		if err != nil || string(resp.GetStdout()) != want {
			t.Errorf("TERM in %s: %q, %v; want %q", id[:12], resp.GetStdout(), err, want)
		}
	}
	if pid, _ := e.verboseInfo(plain)["pid"].(float64); pid <= 0 {
		t.Fatalf("a running container's verbose pid is %v", pid)
	}
	if _, err := e.rt.StopContainer(c, &runtimeapi.StopContainerRequest{ContainerId: plain, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if pid := e.verboseInfo(plain)["pid"]; pid != float64(0) {
		t.Errorf("an exited container's verbose pid is %v, want 0", pid)
	}
}

// TestVerboseInfoShapes: crictl inspect and inspectp show what tools read
// from containerd: the CRI config, the runtime's type and options, and
// the io.kubernetes.cri.* annotations in the OCI spec.
func TestVerboseInfoShapes(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("inspect")
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}, func(c *runtimeapi.ContainerConfig) {
		c.Envs = []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello")}}
	}))
	info := e.verboseInfo(id)
	cfg, _ := info["config"].(map[string]any)
	md, _ := cfg["metadata"].(map[string]any)
	if md["name"] != "app" || cfg["envs"] == nil || info["runtimeType"] == "" || info["runtimeOptions"] == nil {
		t.Errorf("container info: config %v, runtimeType %v, runtimeOptions %v", cfg, info["runtimeType"], info["runtimeOptions"])
	}
	spec, _ := info["runtimeSpec"].(map[string]any)
	ann, _ := spec["annotations"].(map[string]any)
	for k, want := range map[string]string{
		"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": podID,
		"io.kubernetes.cri.sandbox-name": pod.Metadata.Name, "io.kubernetes.cri.sandbox-namespace": pod.Metadata.Namespace,
		"io.kubernetes.cri.sandbox-uid": pod.Metadata.Uid, "io.kubernetes.cri.container-name": "app", "io.kubernetes.cri.image-name": busybox,
	} {
		if ann[k] != want {
			t.Errorf("container spec annotation %s = %v, want %q", k, ann[k], want)
		}
	}
	resp, err := e.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var sb map[string]any
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &sb); err != nil {
		t.Fatal(err)
	}
	sbSpec, _ := sb["runtimeSpec"].(map[string]any)
	sbAnn, _ := sbSpec["annotations"].(map[string]any)
	if sb["config"] == nil || sbAnn["io.kubernetes.cri.container-type"] != "sandbox" || sbAnn["io.kubernetes.cri.sandbox-id"] != podID {
		t.Errorf("sandbox info: config %v, spec annotations %v", sb["config"], sbAnn)
	}
	// The pod network's CNI result: its interfaces and the pod's address.
	cni, _ := json.Marshal(sb["cniResult"])
	var res struct {
		Interfaces []struct{ Name, Sandbox string }
		IPs        []struct{ Address string }
	}
	json.Unmarshal(cni, &res)
	eth0 := false
	for _, i := range res.Interfaces {
		eth0 = eth0 || i.Name == "eth0" && i.Sandbox != ""
	}
	ip := e.podIP(podID)
	if !eth0 || len(res.IPs) == 0 || !strings.HasPrefix(res.IPs[0].Address, ip+"/") {
		t.Errorf("sandbox info: cniResult %s, want eth0 in the pod and its address %s", cni, ip)
	}
}
