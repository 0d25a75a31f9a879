// Command example is what `make run` starts next to berthd: it builds a
// small busybox image from the host's busybox-static (no registry, no
// internet), imports it into berthd and runs the example pod
// example/hello, which serves its hostname over HTTP on port 8080.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
	"github.com/berth-project/berth/test/harness"
)

const image = "berth.example/busybox:1"

func main() {
	socket := flag.String("cri-socket", "/run/berth/berth.sock", "berthd's socket")
	flag.Parse()
	if err := run(*socket); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	for {
		if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("berthd did not come up on %s", socket)
		case <-time.After(100 * time.Millisecond):
		}
	}

	dir, err := os.MkdirTemp("", "berth-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		return err
	}
	archive := filepath.Join(dir, "busybox.tar")
	if err := harness.WriteDockerArchive(archive, image, img); err != nil {
		return err
	}
	if err := conn.Invoke(ctx, server.ImportMethod, wrapperspb.String(archive), &runtimeapi.ListImagesResponse{}); err != nil {
		return fmt.Errorf("import: %w", err)
	}

	// A previous `make run` left its example pod running: replace it.
	label := map[string]string{"berth.example": "hello"}
	old, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: label}})
	if err != nil {
		return err
	}
	for _, p := range old.GetItems() {
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			return err
		}
	}
	pod := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "hello", Namespace: "example", Uid: fmt.Sprintf("example-%d", time.Now().Unix())},
		Hostname:     "hello",
		LogDirectory: "/var/log/pods/example_hello",
		Labels:       label,
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		return err
	}
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  sb.GetPodSandboxId(),
		SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
			Image:    &runtimeapi.ImageSpec{Image: image},
			Command:  []string{"sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo serving on :8080 && exec httpd -f -p 8080 -h /www"},
			LogPath:  "web/0.log",
		},
	})
	if err != nil {
		return err
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		return err
	}
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.GetPodSandboxId()})
	if err != nil {
		return err
	}
	fmt.Printf("example pod %s running: curl http://%s:8080/  (crictl --runtime-endpoint unix://%s ps)\n",
		sb.GetPodSandboxId()[:12], st.GetStatus().GetNetwork().GetIp(), socket)
	return nil
}
