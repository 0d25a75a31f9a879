package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A listing of records written before the bounds (5 MiB annotations)
// stays under the gRPC limit: the largest annotations are left out.
func TestTrimAnswer(t *testing.T) {
	resp := &runtimeapi.ListPodSandboxResponse{}
	for i, n := range []int{5 << 20, 1 << 10, 6 << 20, 5 << 20, 2 << 20} {
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{Id: string(rune('a' + i)), Annotations: map[string]string{"x": strings.Repeat("y", n)}})
	}
	n := trimAnswer(resp, resp.Items, (*runtimeapi.PodSandbox).GetAnnotations, func(p *runtimeapi.PodSandbox) { p.Annotations = nil })
	if size := proto.Size(resp); size > maxListAnswerLen {
		t.Fatalf("answer of %d bytes after trimming", size)
	}
	if n != 1 || resp.Items[2].Annotations != nil || resp.Items[1].Annotations == nil || len(resp.Items) != 5 {
		t.Errorf("trimmed %d; want only the largest (c) left without annotations, every item listed", n)
	}
	small := &runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{{Id: "a", Annotations: map[string]string{"k": "v"}}}}
	if n := trimAnswer(small, small.Items, (*runtimeapi.PodSandbox).GetAnnotations, func(p *runtimeapi.PodSandbox) { p.Annotations = nil }); n != 0 {
		t.Errorf("a small answer was trimmed")
	}
}
