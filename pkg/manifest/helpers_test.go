package manifest

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

const testNode = "node1"

// podYAML is a manifest for pod "web" with the given spec, written with
// two spaces of indentation; a leading newline is dropped.
func podYAML(spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n" + strings.TrimPrefix(spec, "\n")
}

// containerYAML is a manifest for pod "web" with one container "app"
// having the given extra fields, written with four spaces of indentation.
func containerYAML(fields string) string {
	return podYAML("  containers:\n  - name: app\n    image: nginx:1.27\n" + strings.TrimPrefix(fields, "\n"))
}

// parseOne parses a manifest that must hold exactly one valid pod.
func parseOne(t *testing.T, manifest string) *v1.Pod {
	t.Helper()
	pods, err := Parse("pod.yaml", []byte(manifest), testNode)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(pods) != 1 {
		t.Fatalf("Parse returned %d pods, want 1", len(pods))
	}
	return pods[0]
}

// wantErrorLine checks that err has a line starting with prefix and
// containing detail.
func wantErrorLine(t *testing.T, err error, prefix, detail string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a line %q…%q", prefix, detail)
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, detail) {
			return
		}
	}
	t.Errorf("error lacks a line %q…%q; got:\n%v", prefix, detail, err)
}
