package manifest

import (
	"strings"
	"testing"
)

// multiDoc has a comment-only first document and a second one with a
// syntax error on line 15 of the file (line 5 of the document).
const multiDoc = `# static pods of this node
---
apiVersion: v1
kind: Pod
metadata:
  name: first
spec:
  containers:
  - name: app
    image: nginx
---
apiVersion: v1
kind: Pod
metadata:
  name: second: oops
spec:
  containers:
  - name: app
    image: nginx
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		prefix   string // the start of an error line
		detail   string // somewhere in that line
	}{
		{
			name:     "syntax error in the second document reports the file line",
			manifest: multiDoc,
			prefix:   "pods.yaml: document 2: line 15: ",
			detail:   "mapping values are not allowed",
		},
		{
			name:     "duplicate key in the second document reports the file line",
			manifest: containerYAML("") + "---\n" + podYAML("  containers:\n  - name: a\n    name: b\n"),
			prefix:   "pods.yaml: document 2: line 17: ",
			detail:   `key "name" already set in map`,
		},
		{
			name:     "syntax error in a single document has no document number",
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n\tlabels: {}\n",
			prefix:   "pods.yaml: line 5: ",
			detail:   "tab character",
		},
		{
			name:     "JSON syntax error",
			manifest: "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"\n  \"metadata\": {}\n}\n",
			prefix:   "pods.yaml: line ",
			detail:   "did not find expected ',' or '}'",
		},
		{
			name:     "wrong kind in the second document",
			manifest: containerYAML("") + "---\napiVersion: apps/v1\nkind: Deployment\n",
			prefix:   "pods.yaml: document 2: ",
			detail:   `kind "Deployment", want "Pod" (apiVersion v1)`,
		},
		{
			name:     "wrong apiVersion",
			manifest: strings.Replace(containerYAML(""), "apiVersion: v1", "apiVersion: core/v2", 1),
			prefix:   "pods.yaml: ",
			detail:   `apiVersion "core/v2", want "v1" (kind Pod)`,
		},
		{
			name:     "no kind",
			manifest: "apiVersion: v1\nmetadata:\n  name: web\n",
			prefix:   "pods.yaml: ",
			detail:   `no kind, want "Pod" (apiVersion v1)`,
		},
		{
			name:     "not a mapping",
			manifest: "- apiVersion: v1\n",
			prefix:   "pods.yaml: ",
			detail:   "the document is not a mapping",
		},
		{
			name:     "empty file",
			manifest: "",
			prefix:   "pods.yaml: no pod in file",
		},
		{
			name:     "only comments and separators",
			manifest: "# nothing yet\n---\n\n---\n",
			prefix:   "pods.yaml: no pod in file",
		},
		{
			name:     "unknown field",
			manifest: containerYAML("    imagePullPolice: Always\n"),
			prefix:   "pods.yaml: spec.containers[0].imagePullPolice: ",
			detail:   "unknown field",
		},
		{
			name:     "field names are case-sensitive",
			manifest: containerYAML("    WorkingDir: /srv\n"),
			prefix:   "pods.yaml: spec.containers[0].WorkingDir: ",
			detail:   `unknown field (did you mean "workingDir"?)`,
		},
		{
			name:     "unknown top-level field",
			manifest: containerYAML("") + "spec2: {}\n",
			prefix:   "pods.yaml: spec2: ",
			detail:   "unknown field",
		},
		{
			name:     "wrong type in a list",
			manifest: containerYAML("    ports:\n    - containerPort: 80\n    - containerPort: http\n"),
			prefix:   "pods.yaml: spec.containers[0].ports[1].containerPort: ",
			detail:   `Invalid value: "http": must be a 32-bit integer`,
		},
		{
			name:     "number where a string is wanted",
			manifest: containerYAML("    env:\n    - name: PORT\n      value: 8080\n"),
			prefix:   "pods.yaml: spec.containers[0].env[0].value: ",
			detail:   "must be a string",
		},
		{
			name:     "object where a list is wanted",
			manifest: containerYAML("    args: {a: b}\n"),
			prefix:   "pods.yaml: spec.containers[0].args: ",
			detail:   "must be a list",
		},
		{
			name:     "bad quantity",
			manifest: containerYAML("    resources:\n      limits:\n        memory: 12QQ\n"),
			prefix:   "pods.yaml: spec.containers[0].resources.limits[memory]: ",
			detail:   `Invalid value: "12QQ": quantities must match the regular expression`,
		},
		{
			name:     "bad int-or-string",
			manifest: containerYAML("    readinessProbe:\n      tcpSocket:\n        port: [80]\n"),
			prefix:   "pods.yaml: spec.containers[0].readinessProbe.tcpSocket.port: ",
			detail:   "must be an integer or a string",
		},
		{
			name:     "same pod twice in a file",
			manifest: containerYAML("") + "---\n" + containerYAML(""),
			prefix:   "pods.yaml: document 2: ",
			detail:   "pod default/web-node1 is already defined in document 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Parse("pods.yaml", []byte(tt.manifest), testNode)
			if pods != nil {
				t.Errorf("Parse returned %d pods with an error", len(pods))
			}
			wantErrorLine(t, err, tt.prefix, tt.detail)
		})
	}
}

func TestParseCollectsAllErrors(t *testing.T) {
	manifest := containerYAML("    imagePullPolice: Always\n") + "---\n" + podYAML(`
  containers:
  - name: app
  - name: app
    image: nginx
`)
	_, err := Parse("pods.yaml", []byte(manifest), testNode)
	for _, want := range []string{
		"pods.yaml: document 1: spec.containers[0].imagePullPolice: unknown field",
		"pods.yaml: document 2: spec.containers[0].image: Required value",
		`pods.yaml: document 2: spec.containers[1].name: Duplicate value: "app"`,
	} {
		wantErrorLine(t, err, want, "")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("got %d error lines, want 3:\n%v", n, err)
	}
}

func TestParseDocuments(t *testing.T) {
	second := strings.Replace(containerYAML(""), "name: web", "name: api", 1)
	tests := []struct {
		name     string
		manifest string
		want     []string // pod names
	}{
		{"one document", containerYAML(""), []string{"web-node1"}},
		{"two documents", containerYAML("") + "---\n" + second, []string{"web-node1", "api-node1"}},
		{
			name:     "empty documents and a separator with a comment are skipped",
			manifest: "---\n# web\n---\n" + containerYAML("") + "--- # api\n\n" + second + "---\n",
			want:     []string{"web-node1", "api-node1"},
		},
		{
			name:     "CRLF line endings",
			manifest: strings.ReplaceAll(containerYAML("")+"---\n"+second, "\n", "\r\n"),
			want:     []string{"web-node1", "api-node1"},
		},
		{
			name: "JSON",
			manifest: `{
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "web"},
	"spec": {"containers": [{"name": "app", "image": "nginx"}]}
}`,
			want: []string{"web-node1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Parse("pods.yaml", []byte(tt.manifest), testNode)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, p := range pods {
				got = append(got, p.Name)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("pods %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	item := func(name string) string {
		return `{"metadata":{"name":"` + name + `"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}`
	}
	list := `{"apiVersion":"v1","kind":"PodList","items":[` + item("a") + `,` + item("b") + `]}`
	pods, err := ParseURL("http://h/pods", []byte(list+"\n---\n"+containerYAML("")), testNode)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
		if p.Annotations[SourceAnnotation] != "http" || !IsStatic(p) {
			t.Errorf("%s: source %q, want http and static", p.Name, p.Annotations[SourceAnnotation])
		}
	}
	if strings.Join(names, ",") != "a-node1,b-node1,web-node1" {
		t.Errorf("pods %v", names)
	}
	// The same pod from a file and from a URL are different pods.
	fromFile := parseOne(t, containerYAML(""))
	if fromFile.UID == pods[2].UID {
		t.Error("a URL pod has the UID of the same pod from a file")
	}

	// Errors name the list item; a duplicate names both places.
	bad := `{"apiVersion":"v1","kind":"PodList","items":[` + item("a") + `,{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app","image":"nginx","bogus":1}]}},` + item("a") + `]}`
	_, err = ParseURL("http://h/pods", []byte(bad), testNode)
	wantErrorLine(t, err, "http://h/pods: items[1]: ", "bogus")
	wantErrorLine(t, err, "http://h/pods: items[2]: ", "pod default/a-node1 is already defined in items[0]")
	// An empty list is an empty set; an answer of only comments is refused.
	if pods, err := ParseURL("http://h/pods", []byte(`{"apiVersion":"v1","kind":"PodList","items":[]}`), testNode); err != nil || len(pods) != 0 {
		t.Errorf("empty PodList: %v, %v", pods, err)
	}
	_, err = ParseURL("http://h/pods", []byte("# nothing\n"), testNode)
	wantErrorLine(t, err, "http://h/pods: ", "no pod in the answer")
	// Files hold Pods only.
	_, err = Parse("pods.yaml", []byte(list), testNode)
	wantErrorLine(t, err, "pods.yaml: ", `kind "PodList", want "Pod"`)
}
