package manifest

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/diff"
)

// fuzzPod has a little of every part of a pod that decoding, defaulting
// and validation treat specially, so that mutations start from them.
const fuzzPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: kube-system
  labels: {app: web}
  annotations: {berth.io/health-gated: "true", berth.io/min-ready: 30s}
spec:
  hostNetwork: true
  initContainers:
  - name: proxy
    image: envoy:latest
    restartPolicy: Always
  containers:
  - name: app
    image: nginx:1.27
    ports: [{containerPort: 80, name: http}]
    env: [{name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    resources:
      limits: {cpu: 500m, memory: 128Mi}
    livenessProbe: {httpGet: {port: http}}
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 5}
    lifecycle: {preStop: {httpGet: {port: 80}}}
    volumeMounts: [{name: logs, mountPath: /var/log/app}]
  volumes:
  - name: scratch
  - name: logs
    hostPath: {path: /var/log}
  - name: info
    downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
`

// FuzzParse feeds arbitrary bytes to Parse (and ParseURL). Besides not
// panicking: an error refuses the whole input and every line of it names
// the input; accepted pods are named as static pods; and an accepted pod,
// written back as JSON with its file name, parses again to the same pod.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		containerYAML(""),
		fuzzPod,
		multiDoc,
		containerYAML("") + "---\n" + containerYAML(""),
		"---\n# web\n---\n" + containerYAML("") + "--- # api\n",
		strings.ReplaceAll(containerYAML(""), "\n", "\r\n"),
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}`,
		containerYAML("    resources:\n      limits:\n        memory: 12QQ\n"),
		containerYAML("    readinessProbe:\n      tcpSocket:\n        port: [80]\n"),
		containerYAML("    WorkingDir: /srv\n"),
		"apiVersion: apps/v1\nkind: Deployment\n",
		"- apiVersion: v1\n",
		"",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"a"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}]}`), true)
	f.Add([]byte(`{"apiVersion":"v1","kind":"PodList","items":[]}`), true)

	f.Fuzz(func(t *testing.T, data []byte, fromURL bool) {
		parse, source := Parse, FileSource
		if fromURL {
			parse, source = ParseURL, HTTPSource
		}
		pods, err := parse("pods.yaml", data, testNode)
		if err != nil {
			if pods != nil {
				t.Fatalf("%d pods returned with an error", len(pods))
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "pods.yaml: ") {
					t.Fatalf("error line %q does not start with the input's name; error:\n%v", line, err)
				}
			}
			return
		}
		if len(pods) == 0 && !fromURL {
			t.Fatal("Parse accepted a file without pods")
		}
		again, err := parse("pods.yaml", data, testNode)
		if err != nil || len(again) != len(pods) {
			t.Fatalf("a second Parse of the same input: %d pods, %v", len(again), err)
		}
		for i, pod := range pods {
			if again[i].UID != pod.UID {
				t.Errorf("pod %s: UID %s, then %s: the UID must follow the content only", pod.Name, pod.UID, again[i].UID)
			}
			checkStatic(t, pod, source)
			checkRoundTrip(t, pod, parse)
		}
	})
}

// checkStatic checks what makeStatic promises of every pod Parse returns.
func checkStatic(t *testing.T, pod *v1.Pod, source string) {
	t.Helper()
	if !strings.HasSuffix(pod.Name, "-"+testNode) || pod.Spec.NodeName != testNode {
		t.Errorf("pod %q on node %q: want the node name appended and spec.nodeName set", pod.Name, pod.Spec.NodeName)
	}
	if pod.Annotations[SourceAnnotation] != source || !IsStatic(pod) {
		t.Errorf("pod %s: source annotation %q, want %q", pod.Name, pod.Annotations[SourceAnnotation], source)
	}
	if h := pod.Annotations[HashAnnotation]; h == "" || string(pod.UID) != h {
		t.Errorf("pod %s: UID %q and hash annotation %q differ", pod.Name, pod.UID, h)
	}
}

// checkRoundTrip writes pod back as a manifest (under the name it had in
// its file) and parses that: validation and defaulting must be stable, or
// a pod could be valid only on its first read.
func checkRoundTrip(t *testing.T, pod *v1.Pod, parse func(string, []byte, string) ([]*v1.Pod, error)) {
	t.Helper()
	written := pod.DeepCopy()
	written.Name = strings.TrimSuffix(written.Name, "-"+testNode)
	data, err := json.Marshal(written)
	if err != nil {
		t.Fatalf("marshal pod %s: %v", pod.Name, err)
	}
	again, err := parse("again.json", data, testNode)
	if err != nil {
		t.Fatalf("pod %s, written back, is refused: %v\n%s", pod.Name, err, data)
	}
	if len(again) != 1 {
		t.Fatalf("pod %s, written back, gives %d pods", pod.Name, len(again))
	}
	got := again[0]
	if got.Name != pod.Name || got.Namespace != pod.Namespace || !equality.Semantic.DeepEqual(got.Labels, pod.Labels) {
		t.Errorf("written back, pod %s/%s %v reads as %s/%s %v", pod.Namespace, pod.Name, pod.Labels, got.Namespace, got.Name, got.Labels)
	}
	if !equality.Semantic.DeepEqual(got.Spec, pod.Spec) {
		t.Errorf("pod %s: the spec changed when written back and parsed again:\n%s", pod.Name, diff.Diff(pod.Spec, got.Spec))
	}
}
