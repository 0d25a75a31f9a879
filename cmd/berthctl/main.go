// Command berthctl is berth's local command-line tool. It talks to the
// running berthd over its sockets, so the daemon stays the only writer of
// its state.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthctl:", err)
		os.Exit(1)
	}
}

// globals are the flags every command has.
type globals struct {
	criSocket, apiSocket string
	timeout              time.Duration
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "berthctl",
		Short: "berth's local command-line tool: the agent's pods, manifests and upstream, and images",
		// Errors are printed once, by main; usage only for --help.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.criSocket, "cri-socket", "/run/berth/berth.sock", "berthd's CRI socket")
	f.StringVar(&g.apiSocket, "api-socket", "/run/berth/api.sock", "the agent's local API socket")
	f.DurationVar(&g.timeout, "timeout", 10*time.Minute, "how long to wait for berthd")
	root.AddCommand(podsCommand(g), describeCommand(g), logsCommand(g), manifestsCommand(g), statusCommand(g), validateCommand(), imagesCommand(g))
	return root
}

// outputFlag adds -o/--output with the formats a command prints; any
// other format is an error, never a silent table.
func outputFlag(cmd *cobra.Command, formats ...string) *string {
	o := cmd.Flags().StringP("output", "o", "", "output format: "+strings.Join(formats, ", ")+" (default: a table)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if *o != "" && !slices.Contains(formats, *o) {
			return fmt.Errorf("unknown output format %q: %s takes %s", *o, cmd.Name(), strings.Join(formats, ", "))
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
	return o
}

func imagesCommand(g *globals) *cobra.Command {
	images := &cobra.Command{Use: "images", Short: "list, import and export images"}
	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "the runtime's images, as crictl images lists them",
		Args:    cobra.NoArgs,
	}
	listOutput := outputFlag(listCmd, "wide", "json", "yaml")
	listCmd.RunE = func(*cobra.Command, []string) error {
		return g.withCRI(func(ctx context.Context, conn *grpc.ClientConn) error { return listImages(ctx, conn, *listOutput) })
	}
	importCmd := &cobra.Command{
		Use:   "import FILE",
		Short: "import an OCI image-layout or docker-archive tarball",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCRI(func(ctx context.Context, conn *grpc.ClientConn) error { return importImages(ctx, conn, args[0]) })
		},
	}
	var out, format string
	exportCmd := &cobra.Command{
		Use:   "export -o FILE IMAGE...",
		Short: "write images to a tarball",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCRI(func(ctx context.Context, conn *grpc.ClientConn) error {
				return exportImages(ctx, conn, out, format, args)
			})
		},
	}
	exportCmd.Flags().StringVarP(&out, "output", "o", "", "output file (must not exist)")
	exportCmd.Flags().StringVar(&format, "format", "docker", "docker (docker save format) or oci (OCI image layout)")
	exportCmd.MarkFlagRequired("output")
	images.AddCommand(listCmd, importCmd, exportCmd)
	return images
}

// withCRI runs fn with a connection to berthd's socket.
func (g *globals) withCRI(fn func(context.Context, *grpc.ClientConn) error) error {
	conn, err := grpc.NewClient("unix://"+g.criSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	return fn(ctx, conn)
}

func importImages(ctx context.Context, conn *grpc.ClientConn, file string) error {
	path, err := filepath.Abs(file)
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

func exportImages(ctx context.Context, conn *grpc.ClientConn, out, format string, refs []string) error {
	path, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	list := make([]any, 0, len(refs))
	for _, r := range refs {
		list = append(list, r)
	}
	req, err := structpb.NewStruct(map[string]any{"path": path, "format": format, "refs": list})
	if err != nil {
		return err
	}
	if err := conn.Invoke(ctx, server.ExportMethod, req, &wrapperspb.StringValue{}); err != nil {
		return fmt.Errorf("export to %s: %s", path, status.Convert(err).Message())
	}
	fmt.Printf("exported %s to %s\n", strings.Join(refs, " "), path)
	return nil
}
