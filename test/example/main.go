// Command example is what `make run` starts next to berthd: it builds a
// small busybox image from the host's busybox-static (no registry, no
// internet) and imports it into berthd, whose agent then runs the static
// pod of example/manifests/hello.yaml; it waits for the pod to run and
// says how to reach it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
	"github.com/berth-project/berth/test/harness"
)

const image = "berth.example/busybox:1"

func main() {
	socket := flag.String("cri-socket", "/run/berth/berth.sock", "berthd's socket")
	apiSocket := flag.String("api-socket", "/run/berth/api.sock", "the agent's API socket")
	flag.Parse()
	if err := run(*socket, *apiSocket); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(socket, apiSocket string) error {
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

	fmt.Printf("imported %s; the agent runs example/manifests/hello.yaml with it\n", image)
	return waitRunning(ctx, apiSocket)
}

// waitRunning polls the agent's API until the example pod runs, then says
// how to reach and inspect it.
func waitRunning(ctx context.Context, apiSocket string) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", apiSocket)
		},
	}}
	for {
		var list corev1.PodList
		resp, err := client.Get("http://berth/pods")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
		}
		for _, p := range list.Items {
			if p.Labels["app"] == "hello" && p.Status.Phase == corev1.PodRunning {
				fmt.Printf("pod %s running: curl http://%s:8080/\n", p.Name, p.Status.PodIP)
				fmt.Printf("see it with: bin/berthctl pods   or   bin/crictl --runtime-endpoint unix:///run/berth/berth.sock ps\n")
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("example pod not running yet (last error: %v); see bin/berthctl pods", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
