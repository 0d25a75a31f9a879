package manifest

import (
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStaticNaming(t *testing.T) {
	pod := parseOne(t, strings.Replace(containerYAML(""), "  name: web\n",
		"  name: web\n  uid: from-the-file\n  labels: {app: web}\n  annotations: {example.com/owner: ops}\n", 1))
	if pod.Name != "web-node1" {
		t.Errorf("name %q, want web-node1", pod.Name)
	}
	if pod.Spec.NodeName != testNode {
		t.Errorf("spec.nodeName %q, want %q", pod.Spec.NodeName, testNode)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(string(pod.UID)) {
		t.Errorf("uid %q, want 32 hex digits (the file's uid overwritten)", pod.UID)
	}
	want := map[string]string{
		SourceAnnotation:    "file",
		HashAnnotation:      string(pod.UID),
		"example.com/owner": "ops",
	}
	for k, v := range want {
		if pod.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, pod.Annotations[k], v)
		}
	}
	if pod.Labels["app"] != "web" {
		t.Errorf("labels %v, want app=web kept", pod.Labels)
	}
	if !IsStatic(pod) {
		t.Error("IsStatic = false for a pod from a file")
	}
}

func TestIsStatic(t *testing.T) {
	tests := []struct {
		name string
		pod  *v1.Pod
		want bool
	}{
		{"nil", nil, false},
		{"no annotations", &v1.Pod{}, false},
		{"from the API server", &v1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{SourceAnnotation: "api"}}}, false},
		{"from a file", parseOne(t, containerYAML("")), true},
	}
	for _, tt := range tests {
		if got := IsStatic(tt.pod); got != tt.want {
			t.Errorf("%s: IsStatic = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUID(t *testing.T) {
	base := containerYAML("")
	uid := func(manifest, node string) string {
		t.Helper()
		pods, err := Parse("pod.yaml", []byte(manifest), node)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return string(pods[0].UID)
	}
	first := uid(base, testNode)

	// Stable across restarts and upgrades: a change here restarts every
	// static pod of every node, so make it on purpose only.
	if first != "bc624a2172bff58e8ed330a6e6b70473" {
		t.Errorf("uid %s changed for the same manifest", first)
	}
	tests := []struct {
		name     string
		manifest string
		node     string
		same     bool
	}{
		{"parsed again", base, testNode, true},
		{"comment added", "# web\n" + base, testNode, true},
		{"same pod in JSON", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
			"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}`, testNode, true},
		{"explicit defaults", base + "  restartPolicy: Always\n", testNode, true},
		{"image changed", strings.Replace(base, "nginx:1.27", "nginx:1.28", 1), testNode, false},
		{"label added", strings.Replace(base, "  name: web\n", "  name: web\n  labels: {a: b}\n", 1), testNode, false},
		{"other node", base, "node2", false},
	}
	for _, tt := range tests {
		if got := uid(tt.manifest, tt.node); (got == first) != tt.same {
			t.Errorf("%s: uid %s, first %s; want same=%v", tt.name, got, first, tt.same)
		}
	}
}
