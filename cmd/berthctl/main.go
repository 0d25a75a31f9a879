// Command berthctl is berth's local command-line tool. It talks to the
// running berthd over its socket, so the daemon stays the only writer of
// its state.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
)

const usage = `usage: berthctl [--cri-socket PATH] [--api-socket PATH] [--timeout D] COMMAND

commands:
  pods [-o wide|json]                           the agent's pods and their status
  manifests                                     each manifest file: its pods, or why it was refused
  status                                        the agent's pods by phase and its upstream's connection
  validate [--node-name NAME] FILE...           check pod manifests as the agent would, without running them
  images import FILE                            import an OCI image-layout or docker-archive tarball
  images export [--format docker|oci] -o FILE IMAGE...   write images to a tarball
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berthctl:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("berthctl", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	socket := fs.String("cri-socket", "/run/berth/berth.sock", "berthd's socket")
	apiSocket := fs.String("api-socket", "/run/berth/api.sock", "the agent's local API socket")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for berthd")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) > 0 {
		switch rest[0] {
		case "pods":
			return listPods(*apiSocket, rest[1:])
		case "manifests":
			return listManifests(*apiSocket)
		case "status":
			return showStatus(*apiSocket)
		case "validate":
			return validate(rest[1:])
		}
	}
	if len(rest) < 2 || rest[0] != "images" {
		fs.Usage()
		return fmt.Errorf("unknown command %q", strings.Join(rest, " "))
	}
	conn, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch rest[1] {
	case "import":
		return importImages(ctx, conn, rest[2:])
	case "export":
		return exportImages(ctx, conn, rest[2:])
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", strings.Join(rest, " "))
}

func importImages(ctx context.Context, conn *grpc.ClientConn, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: berthctl images import FILE")
	}
	path, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	var resp runtimeapi.ListImagesResponse
	if err := conn.Invoke(ctx, server.ImportMethod, wrapperspb.String(path), &resp); err != nil {
		return fmt.Errorf("import %s: %s", path, status.Convert(err).Message())
	}
	for _, img := range resp.GetImages() {
		fmt.Printf("imported %s %s\n", img.GetId(), strings.Join(img.GetRepoTags(), " "))
	}
	return nil
}

func exportImages(ctx context.Context, conn *grpc.ClientConn, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	out := fs.String("o", "", "output file (must not exist)")
	format := fs.String("format", "docker", "docker (docker save format) or oci (OCI image layout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: berthctl images export [--format docker|oci] -o FILE IMAGE")
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	refs := make([]any, 0, fs.NArg())
	for _, r := range fs.Args() {
		refs = append(refs, r)
	}
	req, err := structpb.NewStruct(map[string]any{"path": path, "format": *format, "refs": refs})
	if err != nil {
		return err
	}
	if err := conn.Invoke(ctx, server.ExportMethod, req, &wrapperspb.StringValue{}); err != nil {
		return fmt.Errorf("export to %s: %s", path, status.Convert(err).Message())
	}
	fmt.Printf("exported %s to %s\n", strings.Join(fs.Args(), " "), path)
	return nil
}
