package kubeletapi

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/podlogs"
)

func TestParseLogOptions(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		query string
		want  *v1.PodLogOptions
		code  int // of the error, 0 for none
	}{
		{query: "", want: &v1.PodLogOptions{}},
		{query: "follow=true&timestamps=1&previous=false", want: &v1.PodLogOptions{Follow: true, Timestamps: true}},
		// The API machinery's reading of a bool: anything but 0 or false.
		{query: "follow", want: &v1.PodLogOptions{Follow: true}},
		{query: "follow=0", want: &v1.PodLogOptions{}},
		{query: "tailLines=10&limitBytes=100", want: &v1.PodLogOptions{TailLines: ptr.To[int64](10), LimitBytes: ptr.To[int64](100)}},
		{query: "tail=5", want: &v1.PodLogOptions{TailLines: ptr.To[int64](5)}},
		{query: "tail=all&tailLines=3", want: &v1.PodLogOptions{}},
		{query: "tailLines=0", want: &v1.PodLogOptions{TailLines: ptr.To[int64](0)}},
		{query: "sinceSeconds=60", want: &v1.PodLogOptions{SinceSeconds: ptr.To[int64](60)}},
		{query: "sinceTime=2026-01-02T03:04:05Z", want: &v1.PodLogOptions{SinceTime: &since}},
		{query: "stream=All", want: &v1.PodLogOptions{Stream: ptr.To("All")}},
		{query: "tailLines=ten", code: http.StatusBadRequest},
		{query: "sinceTime=yesterday", code: http.StatusBadRequest},
		{query: "stream=Stdout", code: http.StatusBadRequest},
		{query: "tailLines=-1", code: http.StatusUnprocessableEntity},
		{query: "limitBytes=0", code: http.StatusUnprocessableEntity},
		{query: "sinceSeconds=0", code: http.StatusUnprocessableEntity},
		{query: "sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z", code: http.StatusUnprocessableEntity},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLogOptions(q)
		var he *httpError
		switch {
		case tc.code != 0 && (!errors.As(err, &he) || he.code != tc.code):
			t.Errorf("%q: error %v, want one answered with %d", tc.query, err, tc.code)
		case tc.code == 0 && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.code == 0 && !equality.Semantic.DeepEqual(got, tc.want):
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestLogOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	early, late := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now.Add(-time.Second))
	for name, tc := range map[string]struct {
		in   *v1.PodLogOptions
		want podlogs.Options
	}{
		"all":           {&v1.PodLogOptions{}, podlogs.Options{Tail: -1}},
		"timestamps":    {&v1.PodLogOptions{Follow: true, Timestamps: true}, podlogs.Options{Tail: -1, Timestamps: true}},
		"tail, limit":   {&v1.PodLogOptions{TailLines: ptr.To[int64](2), LimitBytes: ptr.To[int64](9)}, podlogs.Options{Tail: 2, LimitBytes: 9}},
		"since seconds": {&v1.PodLogOptions{SinceSeconds: ptr.To[int64](60)}, podlogs.Options{Tail: -1, Since: now.Add(-time.Minute)}},
		"since time":    {&v1.PodLogOptions{SinceTime: &early}, podlogs.Options{Tail: -1, Since: early.Time}},
		"the later":     {&v1.PodLogOptions{SinceSeconds: ptr.To[int64](60), SinceTime: &late}, podlogs.Options{Tail: -1, Since: late.Time}},
	} {
		if got := logOptions(tc.in, now); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestLogContainerID(t *testing.T) {
	pod := func(cs v1.ContainerStatus) *v1.Pod {
		cs.Name = "app"
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{cs}}}
	}
	running := v1.ContainerState{Running: &v1.ContainerStateRunning{}}
	lastRun := v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ContainerID: "berth://old"}}
	for name, tc := range map[string]struct {
		pod      *v1.Pod
		previous bool
		want     string // ID, or what the error says
	}{
		"running":              {pod(v1.ContainerStatus{ContainerID: "berth://cur", State: running}), false, "cur"},
		"previous":             {pod(v1.ContainerStatus{ContainerID: "berth://cur", State: running, LastTerminationState: lastRun}), true, "old"},
		"no previous":          {pod(v1.ContainerStatus{ContainerID: "berth://cur", State: running}), true, "previous terminated container"},
		"terminated":           {pod(v1.ContainerStatus{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ContainerID: "berth://done"}}}), false, "done"},
		"back-off after a run": {pod(v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, LastTerminationState: lastRun}), false, "old"},
		"image pull":           {pod(v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}), false, "trying and failing to pull image"},
		"creating":             {pod(v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}), false, "waiting to start: ContainerCreating"},
		"no status":            {&v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, false, `container "app" in pod "web" is not available`},
	} {
		id, err := logContainerID(tc.pod, "app", tc.previous)
		got := id
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) || (err == nil) != !strings.Contains(tc.want, " ") {
			t.Errorf("%s: %q (%v), want %q", name, id, err, tc.want)
		}
	}
}
