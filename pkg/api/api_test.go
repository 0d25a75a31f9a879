package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/pkg/manifest"
	"github.com/berth-project/berth/pkg/source"
)

type pods []v1.Pod

func (p pods) Pods() []v1.Pod { return p }

type evs []v1.Event

func (e evs) Events() []v1.Event { return e }

type srcs struct {
	files []manifest.File
	up    source.UpstreamStatus
}

func (s srcs) Manifests() []manifest.File      { return s.files }
func (s srcs) Upstream() source.UpstreamStatus { return s.up }

func TestEndpoints(t *testing.T) {
	s := New(pods{{ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default"}, Status: v1.PodStatus{Phase: v1.PodRunning}}},
		evs{{Reason: "Unhealthy", Message: "Liveness probe failed: boom", InvolvedObject: v1.ObjectReference{Name: "web-n1"}}},
		srcs{files: []manifest.File{
			{Path: "/m/b.yaml", Err: errors.New("/m/b.yaml: kind \"Job\", want \"Pod\"")},
			{Path: "/m/a.yaml", Pods: []*v1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default", UID: "u1"}}}},
		}, up: source.UpstreamStatus{Plugin: "url", Connection: "disconnected", Error: "connection refused"}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	get := func(path string, v any) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	if code := get("/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	// Offline is healthy: the detail says what is unreachable.
	resp, err := http.Get(srv.URL + "/healthz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "[-]upstream url disconnected: connection refused\n") {
		t.Errorf("/healthz?verbose: %d %q", resp.StatusCode, body)
	}
	var up source.UpstreamStatus
	if get("/upstream", &up); up.Plugin != "url" || up.Connection != "disconnected" {
		t.Errorf("/upstream: %+v", up)
	}
	var events v1.EventList
	get("/events", &events)
	if events.Kind != "EventList" || len(events.Items) != 1 || events.Items[0].Reason != "Unhealthy" {
		t.Errorf("/events: %+v", events)
	}
	var list v1.PodList
	get("/pods", &list)
	if list.Kind != "PodList" || len(list.Items) != 1 || list.Items[0].Kind != "Pod" || list.Items[0].Status.Phase != v1.PodRunning {
		t.Errorf("/pods: %+v", list)
	}
	var ms []Manifest
	get("/manifests", &ms)
	if len(ms) != 2 || ms[0].File != "/m/a.yaml" || ms[0].Pods[0].UID != "u1" || ms[1].Error == "" {
		t.Errorf("/manifests: %+v", ms)
	}
	resp, err = http.Post(srv.URL+"/pods", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /pods: %d, want 405 (read-only)", resp.StatusCode)
	}
}
