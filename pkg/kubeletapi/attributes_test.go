package kubeletapi

import (
	"net/http"
	"slices"
	"testing"
)

func TestRequestSubresources(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/pods", []string{"pods", "proxy"}},
		{"/pods/", []string{"pods", "proxy"}},
		{"/podsx", []string{"proxy"}},
		{"/healthz", []string{"healthz", "proxy"}},
		{"/healthz/ping", []string{"healthz", "proxy"}},
		{"/configz", []string{"configz", "proxy"}},
		{"/runningpods/", []string{"pods", "proxy"}},
		{"/stats/summary", []string{"stats"}},
		{"/stats", []string{"stats"}},
		{"/statsfoo", []string{"proxy"}},
		{"/metrics", []string{"metrics"}},
		{"/metrics/cadvisor", []string{"metrics"}},
		{"/metrics/probes", []string{"metrics"}},
		{"/logs/", []string{"log"}},
		{"/logs/kern.log", []string{"log"}},
		{"/checkpoint/ns/pod/c", []string{"checkpoint"}},
		{"/flagz", []string{"configz"}},
		{"/containerLogs/ns/pod/c", []string{"proxy"}},
		{"/exec/ns/pod/c", []string{"proxy"}},
		{"/attach/ns/pod/uid/c", []string{"proxy"}},
		{"/portForward/ns/pod", []string{"proxy"}},
		{"/run/ns/pod/c", []string{"proxy"}},
		{"/spec/", []string{"proxy"}}, // kubelet no longer serves /spec
		{"/", []string{"proxy"}},
	} {
		if got := requestSubresources(tc.path); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestRequestVerb(t *testing.T) {
	for method, want := range map[string]string{
		http.MethodGet: "get", http.MethodHead: "get", http.MethodPost: "create", http.MethodPut: "update",
		http.MethodPatch: "patch", http.MethodDelete: "delete", http.MethodOptions: "",
	} {
		if got := requestVerb(method); got != want {
			t.Errorf("%s: %q, want %q", method, got, want)
		}
	}
}
