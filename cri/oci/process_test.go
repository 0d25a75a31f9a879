package oci

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	image := v1.Config{Entrypoint: []string{"/entry", "-e"}, Cmd: []string{"cmd", "-c"}}
	tests := []struct {
		name          string
		command, args []string
		image         v1.Config
		want          []string
	}{
		{"image only", nil, nil, image, []string{"/entry", "-e", "cmd", "-c"}},
		{"command drops image cmd", []string{"/bin/sh"}, nil, image, []string{"/bin/sh"}},
		{"args replace cmd", nil, []string{"x"}, image, []string{"/entry", "-e", "x"}},
		{"command and args", []string{"/bin/sh", "-c"}, []string{"echo hi"}, image,
			[]string{"/bin/sh", "-c", "echo hi"}},
		{"no entrypoint, cmd only", nil, nil, v1.Config{Cmd: []string{"/cmd"}}, []string{"/cmd"}},
		{"no entrypoint, args only", nil, []string{"/bin/true"}, v1.Config{Cmd: []string{"/cmd"}},
			[]string{"/bin/true"}},
		{"entrypoint only", nil, nil, v1.Config{Entrypoint: []string{"/e"}}, []string{"/e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{Command: tt.command, Args: tt.args}
			got, err := processArgs(cfg, tt.image)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProcessArgsEmpty(t *testing.T) {
	for _, cfg := range []*runtimeapi.ContainerConfig{
		{},
		{Args: []string{""}},
	} {
		_, err := processArgs(cfg, v1.Config{})
		wantInvalid(t, err, "no command specified")
	}
}

func TestProcessEnv(t *testing.T) {
	image := v1.Config{Env: []string{"PATH=/img/bin", "A=image", "B=image", "NOVALUE", "=bad"}}
	cfg := &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{
		{Key: "B", Value: []byte("request")},
		{Key: "C", Value: []byte("x=y")},
	}}
	got, err := processEnv(cfg, image, "pod-a", "/home/alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOSTNAME=pod-a", "PATH=/img/bin", "A=image", "B=request", "NOVALUE", "C=x=y", "HOME=/home/alice"}
	if !slices.Equal(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
}

func TestProcessEnvDefaults(t *testing.T) {
	got, err := processEnv(&runtimeapi.ContainerConfig{}, v1.Config{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{defaultPath, "HOME=/"}
	if !slices.Equal(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
	// HOME from the request wins over the passwd entry.
	cfg := &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{{Key: "HOME", Value: []byte("/data")}}}
	got, _ = processEnv(cfg, v1.Config{}, "", "/root")
	if !slices.Contains(got, "HOME=/data") || slices.Contains(got, "HOME=/root") {
		t.Errorf("env = %q, want HOME=/data only", got)
	}
}

func TestProcessEnvBadKey(t *testing.T) {
	for _, key := range []string{"", "A=B"} {
		cfg := &runtimeapi.ContainerConfig{Envs: []*runtimeapi.KeyValue{{Key: "ok"}, {Key: key}}}
		_, err := processEnv(cfg, v1.Config{}, "", "")
		wantInvalid(t, err, "envs[1].key")
	}
}

func TestWorkingDir(t *testing.T) {
	tests := []struct {
		req, image, want string
	}{
		{"", "", "/"},
		{"", "/srv", "/srv"},
		{"", "app", "/app"},
		{"/work/", "/srv", "/work"},
	}
	for _, tt := range tests {
		got, err := workingDir(&runtimeapi.ContainerConfig{WorkingDir: tt.req}, v1.Config{WorkingDir: tt.image})
		if err != nil || got != tt.want {
			t.Errorf("workingDir(%q, %q) = %q, %v; want %q", tt.req, tt.image, got, err, tt.want)
		}
	}
	_, err := workingDir(&runtimeapi.ContainerConfig{WorkingDir: "rel"}, v1.Config{})
	wantInvalid(t, err, "working_dir", "rel")
}
