package server

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The fuzz targets decode the input as the request message a client
// sends, call the checks RunPodSandbox and CreateContainer make before
// touching anything, and hold them to the bounds limits.go documents:
// what passes is within every bound, what is within every bound passes,
// and a refusal reaches the client as InvalidArgument.

func FuzzValidateSandboxConfig(f *testing.F) {
	md := &runtimeapi.PodSandboxMetadata{Name: "web-node1", Namespace: "default", Uid: "0123456789abcdef0123456789abcdef"}
	for _, cfg := range []*runtimeapi.PodSandboxConfig{
		{Metadata: md, Hostname: "web", LogDirectory: "/var/log/pods/default_web_0123",
			Labels:      map[string]string{"io.kubernetes.pod.name": "web", "app": "web"},
			Annotations: map[string]string{"kubernetes.io/config.source": "file"},
			DnsConfig:   &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
			Linux:       &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}}},
		{Metadata: md},
		{},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: strings.Repeat("a", maxNameLen), Namespace: strings.Repeat("n", maxNamespaceLen), Uid: strings.Repeat("u", maxUIDLen)},
			Hostname: strings.Repeat("h", maxHostnameLen), Labels: map[string]string{strings.Repeat("k", maxLabelKeyLen): ""}},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "../x", Namespace: "a\tb", Uid: "u"}, Hostname: "bad host", LogDirectory: "rel"},
		{Metadata: md, Labels: map[string]string{"big": strings.Repeat("v", maxLabels)}},
		{Metadata: md, Annotations: map[string]string{"big": strings.Repeat("v", maxAnnotations)}},
		{Metadata: md, DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"dns.local"}, Searches: []string{"a b"}}},
	} {
		addMessage(f, cfg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg runtimeapi.PodSandboxConfig
		if proto.Unmarshal(data, &cfg) != nil {
			return // gRPC refuses it before berth sees it
		}
		err := validateSandboxConfig(&cfg)
		checkVerdict(t, err, sandboxProblem(&cfg))
		if err == nil {
			_, err := resolvConf(cfg.GetDnsConfig())
			wantInvalidArgument(t, err)
		}
	})
}

func FuzzValidateContainerConfig(f *testing.F) {
	md := &runtimeapi.ContainerMetadata{Name: "app"}
	img := &runtimeapi.ImageSpec{Image: "docker.io/library/nginx:1.27"}
	for _, cfg := range []*runtimeapi.ContainerConfig{
		{Metadata: md, Image: img, Command: []string{"/bin/sh"}, Args: []string{"-c", "sleep 1"}, WorkingDir: "/srv",
			Envs:        []*runtimeapi.KeyValue{{Key: "PATH", Value: []byte("/usr/bin:/bin")}, {Key: "EMPTY"}},
			Labels:      map[string]string{"io.kubernetes.container.name": "app"},
			Annotations: map[string]string{"io.kubernetes.container.restartCount": "0"},
			LogPath:     "app/0.log", StopSignal: runtimeapi.Signal_SIGNAL_SIGQUIT,
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data"},
				{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "busybox"}, Readonly: true, ImageSubPath: "bin"}}},
		{Metadata: md, Image: img},
		{},
		{Metadata: &runtimeapi.ContainerMetadata{Name: strings.Repeat("c", maxNameLen+1)}, Image: img},
		{Metadata: md, Image: img, Envs: []*runtimeapi.KeyValue{{Key: "A=B"}, {Key: "NUL", Value: []byte("a\x00b")}}, Args: []string{"a\x00"}},
		{Metadata: md, Image: img, LogPath: "../../etc/passwd", Mounts: []*runtimeapi.Mount{{Image: &runtimeapi.ImageSpec{Image: "x"}, ImageSubPath: "../x"}}},
		{Metadata: md, Image: img, LogPath: "/abs.log", StopSignal: runtimeapi.Signal(1000)},
	} {
		data, err := proto.Marshal(cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "/var/log/pods/default_web_0123")
	}
	f.Fuzz(func(t *testing.T, data []byte, logDir string) {
		var cfg runtimeapi.ContainerConfig
		if proto.Unmarshal(data, &cfg) != nil {
			return
		}
		err := validateContainerConfig(&cfg)
		checkVerdict(t, err, containerProblem(&cfg))
		if err != nil {
			return
		}
		for i, m := range cfg.GetMounts() {
			if m.GetImage() != nil {
				wantInvalidArgument(t, validateImageMount(i, m))
			}
		}
		_, err = containerStopSignal(&cfg, v1.Config{})
		wantInvalidArgument(t, err)
		p, err := containerLogPath(logDir, cfg.GetLogPath())
		wantInvalidArgument(t, err)
		if err == nil && p != "" {
			if rel, err := filepath.Rel(logDir, p); err != nil || !filepath.IsLocal(rel) {
				t.Errorf("log_path %q in %q gives %q, outside the log directory", cfg.GetLogPath(), logDir, p)
			}
		}
	})
}

func addMessage(f *testing.F, m proto.Message) {
	data, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

// checkVerdict compares a check's verdict with what the bounds say.
func checkVerdict(t *testing.T, err error, problem string) {
	t.Helper()
	switch {
	case err == nil && problem != "":
		t.Fatalf("accepted although %s", problem)
	case err != nil && problem == "":
		t.Fatalf("refused within the bounds: %v", err)
	}
	wantInvalidArgument(t, err)
}

// wantInvalidArgument checks the code a client gets for err, if any.
func wantInvalidArgument(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if code := status.Code(toGRPC(err)); code != codes.InvalidArgument {
		t.Fatalf("%v: code %v, want InvalidArgument", err, code)
	}
}

// sandboxProblem says why cfg is out of bounds, "" if it is not: the
// rules of limits.go and validateSandboxConfig, restated.
func sandboxProblem(cfg *runtimeapi.PodSandboxConfig) string {
	md := cfg.GetMetadata()
	if md == nil {
		return "there is no metadata"
	}
	if p := nameProblem("name", md.GetName(), 253); p != "" {
		return p
	}
	if p := nameProblem("namespace", md.GetNamespace(), 63); p != "" {
		return p
	}
	if p := nameProblem("uid", md.GetUid(), 128); p != "" {
		return p
	}
	if d := cfg.GetLogDirectory(); d != "" && !strings.HasPrefix(d, "/") {
		return "the log directory is relative"
	}
	h := cfg.GetHostname()
	if len(h) > 64 {
		return "the hostname is over 64 bytes"
	}
	if strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != "" {
		return "the hostname holds a character other than a letter, digit, '-', '.' or '_'"
	}
	return mapsProblem(cfg.GetLabels(), cfg.GetAnnotations())
}

// containerProblem is sandboxProblem for a container config.
func containerProblem(cfg *runtimeapi.ContainerConfig) string {
	if p := nameProblem("name", cfg.GetMetadata().GetName(), 253); p != "" {
		return p
	}
	if cfg.GetImage().GetImage() == "" {
		return "there is no image"
	}
	if p := mapsProblem(cfg.GetLabels(), cfg.GetAnnotations()); p != "" {
		return p
	}
	env := 0
	for _, e := range cfg.GetEnvs() {
		k, v := e.GetKey(), string(e.GetValue())
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return "an environment variable is malformed"
		}
		env += len(k) + len(v) + 2 // "K=V" and its NUL, as execve counts
	}
	if env > 1<<20 {
		return "the environment is over 1 MiB"
	}
	args := 0
	for _, a := range append(cfg.GetCommand(), cfg.GetArgs()...) {
		if strings.Contains(a, "\x00") {
			return "an argument holds a NUL"
		}
		args += len(a) + 1
	}
	if args > 1<<20 {
		return "command and args are over 1 MiB"
	}
	return ""
}

func nameProblem(what, v string, limit int) string {
	switch {
	case v == "":
		return "the " + what + " is empty"
	case len(v) > limit:
		return "the " + what + " is too long"
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "the " + what + " holds a control character"
	case strings.Contains(v, "/") || strings.Contains(v, ".."):
		return "the " + what + " holds / or .."
	}
	return ""
}

func mapsProblem(labels, annotations map[string]string) string {
	size := 0
	for k, v := range labels {
		if k == "" || len(k) > 317 {
			return "a label key is empty or over 317 bytes"
		}
		size += len(k) + len(v)
	}
	if size > 64<<10 {
		return "the labels are over 64 KiB"
	}
	size = 0
	for k, v := range annotations {
		size += len(k) + len(v)
	}
	if size > 256<<10 {
		return "the annotations are over 256 KiB"
	}
	return ""
}
