package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listImages prints the runtime's images as crictl images does: one line
// per tag (an untagged image once, as <none>), largest names first.
func listImages(ctx context.Context, conn *grpc.ClientConn, output string) error {
	resp, err := runtimeapi.NewImageServiceClient(conn).ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	if output == "json" || output == "yaml" {
		body, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = printRaw(append(body, '\n'), output)
		return err
	}
	type row struct{ repo, tag, digest, id, size, pinned string }
	var rows []row
	for _, img := range resp.GetImages() {
		id := strings.TrimPrefix(img.GetId(), "sha256:")
		if len(id) > 13 {
			id = id[:13]
		}
		digest := "<none>"
		if d := img.GetRepoDigests(); len(d) > 0 {
			_, digest, _ = strings.Cut(d[0], "@")
		}
		size := resource.NewQuantity(int64(img.GetSize()), resource.BinarySI).String()
		pinned := fmt.Sprint(img.GetPinned())
		tags := img.GetRepoTags()
		if len(tags) == 0 {
			repo := "<none>"
			if d := img.GetRepoDigests(); len(d) > 0 {
				repo, _, _ = strings.Cut(d[0], "@")
			}
			rows = append(rows, row{repo, "<none>", digest, id, size, pinned})
		}
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			if i < 0 || strings.Contains(t[i:], "/") {
				rows = append(rows, row{t, "<none>", digest, id, size, pinned})
				continue
			}
			rows = append(rows, row{t[:i], t[i+1:], digest, id, size, pinned})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.repo+":"+a.tag, b.repo+":"+b.tag) })
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	header := "IMAGE\tTAG\tIMAGE ID\tSIZE"
	if output == "wide" {
		header += "\tDIGEST\tPINNED"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\t%s", r.repo, r.tag, r.id, r.size)
		if output == "wide" {
			line += fmt.Sprintf("\t%s\t%s", r.digest, r.pinned)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
