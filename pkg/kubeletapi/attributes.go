package kubeletapi

import (
	"net/http"
	"strings"
)

// requestVerb is the API verb of an HTTP method, as kubelet maps it; ""
// for a method with none (no check can allow it).
func requestVerb(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// The paths kubelet authorizes as a subresource of their own. A path
// kubelet allows with either of two subresources (fine-grained, the
// first, or the older proxy) is checked with both, in that order.
var (
	fineGrained = []struct{ path, subresource string }{
		{"/allocatedPods", "pods"},
		{"/pods", "pods"},
		{"/healthz", "healthz"},
		{"/configz", "configz"},
		{"/runningpods", "pods"},
	}
	ownSubresource = []struct{ path, subresource string }{
		{"/stats", "stats"},
		{"/metrics", "metrics"},
		{"/logs", "log"},
		{"/checkpoint", "checkpoint"},
		{"/statusz", "statusz"},
		{"/flagz", "configz"},
	}
)

// requestSubresources are the subresources of nodes/<node> a request to
// path is authorized against, in order; the first one allowed admits it.
// Everything else — containerLogs, exec, attach, portForward, run — is
// proxy, as for kubelet.
func requestSubresources(path string) []string {
	var out []string
	for _, p := range fineGrained {
		if isSubpath(path, p.path) {
			out = append(out, p.subresource)
			break
		}
	}
	for _, p := range ownSubresource {
		if isSubpath(path, p.path) {
			return append(out, p.subresource)
		}
	}
	return append(out, "proxy")
}

// isSubpath says whether path is prefix or below it: /stats/summary is
// below /stats, /statsfoo is not.
func isSubpath(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
