package kube

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/metrics"
)

// apiRequests counts berth's requests to the API server as kubelet's
// rest_client_requests_total does, so an operator can hold the node's API
// traffic against kubelet's.
var apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "rest_client_requests_total",
	Help: "Number of HTTP requests to the API server, partitioned by status code, method, and host.",
}, []string{"code", "method", "host"})

type requestResult struct{}

func (requestResult) Increment(_ context.Context, code, method, host string) {
	apiRequests.WithLabelValues(code, method, host).Inc()
}

func init() {
	metrics.Register(metrics.RegisterOpts{RequestResult: requestResult{}})
}

// Collectors are the plugin's metrics, for berthd's /metrics.
func Collectors() []prometheus.Collector { return []prometheus.Collector{apiRequests} }
