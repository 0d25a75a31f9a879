// Command berthctl is berth's local command-line tool. It talks to the
// running berthd over its socket, so the daemon stays the only writer of
// its state.
//
//	berthctl [--cri-socket PATH] images import FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
)

const usage = `usage: berthctl [--cri-socket PATH] images import FILE

  images import FILE   import an OCI image-layout or docker-archive tarball
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
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for berthd")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) != 3 || rest[0] != "images" || rest[1] != "import" {
		fs.Usage()
		return fmt.Errorf("unknown command %q", strings.Join(rest, " "))
	}
	path, err := filepath.Abs(rest[2])
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+*socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var resp runtimeapi.ListImagesResponse
	if err := conn.Invoke(ctx, server.ImportMethod, wrapperspb.String(path), &resp); err != nil {
		return fmt.Errorf("import %s: %s", path, status.Convert(err).Message())
	}
	for _, img := range resp.GetImages() {
		fmt.Printf("imported %s %s\n", img.GetId(), strings.Join(img.GetRepoTags(), " "))
	}
	return nil
}
