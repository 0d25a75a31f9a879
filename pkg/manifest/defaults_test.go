package manifest

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestDefaults(t *testing.T) {
	pod := parseOne(t, podYAML(`
  initContainers:
  - name: setup
    image: busybox
  - name: proxy
    image: envoy:latest
    restartPolicy: Always
  containers:
  - name: app
    image: nginx:1.27
    ports: [{containerPort: 80}]
    env: [{name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    resources:
      limits: {cpu: 500m, memory: 128Mi}
      requests: {cpu: 100m}
    livenessProbe: {httpGet: {port: 80}}
    readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 5, failureThreshold: 1}
    startupProbe: {exec: {command: ["true"]}}
    lifecycle: {preStop: {httpGet: {port: 80}}}
  volumes:
  - name: scratch
  - name: logs
    hostPath: {path: /var/log}
  - name: info
    downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
status:
  phase: Running
  podIP: 10.0.0.9
`))
	spec := pod.Spec
	app := spec.Containers[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"namespace", pod.Namespace, "default"},
		{"status dropped", pod.Status.Phase, v1.PodPhase("")},
		{"restartPolicy", spec.RestartPolicy, v1.RestartPolicyAlways},
		{"dnsPolicy", spec.DNSPolicy, v1.DNSClusterFirst},
		{"terminationGracePeriodSeconds", *spec.TerminationGracePeriodSeconds, int64(30)},
		{"schedulerName", spec.SchedulerName, "default-scheduler"},
		{"securityContext", *spec.SecurityContext, v1.PodSecurityContext{}},
		{"enableServiceLinks", *spec.EnableServiceLinks, true},
		{"imagePullPolicy with a tag", app.ImagePullPolicy, v1.PullIfNotPresent},
		{"init imagePullPolicy without a tag", spec.InitContainers[0].ImagePullPolicy, v1.PullAlways},
		{"sidecar imagePullPolicy latest", spec.InitContainers[1].ImagePullPolicy, v1.PullAlways},
		{"plain init container restartPolicy", spec.InitContainers[0].RestartPolicy, (*v1.ContainerRestartPolicy)(nil)},
		{"sidecar restartPolicy", *spec.InitContainers[1].RestartPolicy, v1.ContainerRestartPolicyAlways},
		{"terminationMessagePath", app.TerminationMessagePath, "/dev/termination-log"},
		{"init terminationMessagePath", spec.InitContainers[0].TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", app.TerminationMessagePolicy, v1.TerminationMessageReadFile},
		{"port protocol", app.Ports[0].Protocol, v1.ProtocolTCP},
		{"no hostPort without hostNetwork", app.Ports[0].HostPort, int32(0)},
		{"env fieldRef apiVersion", app.Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"memory request from limit", app.Resources.Requests.Memory().String(), "128Mi"},
		{"cpu request kept", app.Resources.Requests.Cpu().String(), "100m"},
		{"probe timeoutSeconds", app.LivenessProbe.TimeoutSeconds, int32(1)},
		{"probe periodSeconds", app.LivenessProbe.PeriodSeconds, int32(10)},
		{"probe successThreshold", app.LivenessProbe.SuccessThreshold, int32(1)},
		{"probe failureThreshold", app.LivenessProbe.FailureThreshold, int32(3)},
		{"probe periodSeconds kept", app.ReadinessProbe.PeriodSeconds, int32(5)},
		{"probe failureThreshold kept", app.ReadinessProbe.FailureThreshold, int32(1)},
		{"startup probe defaulted", app.StartupProbe.PeriodSeconds, int32(10)},
		{"httpGet path", app.LivenessProbe.HTTPGet.Path, "/"},
		{"httpGet scheme", app.LivenessProbe.HTTPGet.Scheme, v1.URISchemeHTTP},
		{"preStop httpGet path", app.Lifecycle.PreStop.HTTPGet.Path, "/"},
		{"volume without source", *spec.Volumes[0].EmptyDir, v1.EmptyDirVolumeSource{}},
		{"hostPath type", *spec.Volumes[1].HostPath.Type, v1.HostPathUnset},
		{"downwardAPI defaultMode", *spec.Volumes[2].DownwardAPI.DefaultMode, int32(0o644)},
		{"downwardAPI fieldRef apiVersion", spec.Volumes[2].DownwardAPI.Items[0].FieldRef.APIVersion, "v1"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultsKeepExplicitValues(t *testing.T) {
	pod := parseOne(t, podYAML(`
  restartPolicy: Never
  dnsPolicy: Default
  terminationGracePeriodSeconds: 5
  enableServiceLinks: false
  containers:
  - name: app
    image: nginx
    imagePullPolicy: Never
    terminationMessagePolicy: FallbackToLogsOnError
    ports: [{containerPort: 53, protocol: UDP}]
    resources: {limits: {memory: 1Gi}, requests: {memory: 512Mi}}
`))
	spec, app := pod.Spec, pod.Spec.Containers[0]
	tests := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", spec.RestartPolicy, v1.RestartPolicyNever},
		{"dnsPolicy", spec.DNSPolicy, v1.DNSDefault},
		{"terminationGracePeriodSeconds", *spec.TerminationGracePeriodSeconds, int64(5)},
		{"enableServiceLinks", *spec.EnableServiceLinks, false},
		{"imagePullPolicy", app.ImagePullPolicy, v1.PullNever},
		{"terminationMessagePolicy", app.TerminationMessagePolicy, v1.TerminationMessageFallbackToLogsOnError},
		{"protocol", app.Ports[0].Protocol, v1.ProtocolUDP},
		{"memory request", app.Resources.Requests.Memory().Cmp(resource.MustParse("512Mi")), 0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultHostNetworkPorts(t *testing.T) {
	pod := parseOne(t, containerYAML("    ports: [{containerPort: 9100}]\n  hostNetwork: true\n"))
	if got := pod.Spec.Containers[0].Ports[0].HostPort; got != 9100 {
		t.Errorf("hostPort %d, want 9100 (the containerPort) with hostNetwork", got)
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  v1.PullPolicy
	}{
		{"nginx", v1.PullAlways},
		{"nginx:latest", v1.PullAlways},
		{"nginx:1.27", v1.PullIfNotPresent},
		{"docker.io/library/nginx:1.27", v1.PullIfNotPresent},
		{"localhost:5000/nginx", v1.PullAlways},
		{"localhost:5000/nginx:1.27", v1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", v1.PullIfNotPresent},
		{"nginx:1.27@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", v1.PullIfNotPresent},
		// As the API server: the tag decides even with a digest.
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", v1.PullAlways},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}
