package image

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
)

func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadRegistryConfig(t *testing.T) {
	ca := newTestRegistry(t, withTLS()).caFile()
	want := RegistryConfig{Registries: map[string]RegistryHost{
		"docker.io":            {Mirrors: []string{"http://127.0.0.1:5000", "https://mirror.example.com/prefix"}},
		"127.0.0.1:5000":       {Insecure: true},
		"registry.example.com": {CAFiles: []string{ca}, SkipVerify: true},
	}}
	yamlCfg := `registries:
  docker.io:
    mirrors: ["http://127.0.0.1:5000", "https://mirror.example.com/prefix"]
  "127.0.0.1:5000": {insecure: true}
  registry.example.com:
    caFiles: [` + ca + `]
    skipVerify: true
`
	jsonCfg := `{"registries": {"docker.io": {"mirrors": ["http://127.0.0.1:5000", "https://mirror.example.com/prefix"]},
  "127.0.0.1:5000": {"insecure": true},
  "registry.example.com": {"caFiles": ["` + ca + `"], "skipVerify": true}}}`
	for name, content := range map[string]string{"yaml": yamlCfg, "json": jsonCfg} {
		got, err := LoadRegistryConfig(writeTestFile(t, "registries."+name, content))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: LoadRegistryConfig = %+v, %v; want %+v", name, got, err, want)
		}
		if err := openStore(t).SetRegistries(got); err != nil {
			t.Errorf("%s: SetRegistries: %v", name, err)
		}
	}
	if got, err := LoadRegistryConfig(writeTestFile(t, "empty.yaml", "")); err != nil || len(got.Registries) != 0 {
		t.Errorf("empty file: %+v, %v", got, err)
	}
}

func TestLoadRegistryConfigErrors(t *testing.T) {
	notPEM := writeTestFile(t, "ca.pem", "not a certificate")
	for _, tc := range []struct{ name, content, want string }{
		{"unknown field", "registries:\n  docker.io:\n    mirror: [http://x]\n", `unknown field "mirror"`},
		{"unknown top field", "registry: {}\n", `unknown field "registry"`},
		{"wrong type", "registries:\n  docker.io:\n    insecure: sometimes\n", "insecure"},
		{"ftp mirror", "registries:\n  docker.io:\n    mirrors: [ftp://x]\n", `registries["docker.io"].mirrors[0]`},
		{"mirror without scheme", "registries:\n  docker.io:\n    mirrors: [127.0.0.1:5000]\n", `registries["docker.io"].mirrors[0]`},
		{"mirror with query", "registries:\n  docker.io:\n    mirrors: [\"http://x?y=1\"]\n", `mirrors[0]`},
		{"bad prefix", "registries:\n  docker.io:\n    mirrors: [\"http://x/UPPER\"]\n", `mirrors[0]`},
		{"host with path", "registries:\n  docker.io/library: {insecure: true}\n", `registries["docker.io/library"]`},
		{"bad port", "registries:\n  \"x:99999\": {insecure: true}\n", `registries["x:99999"]`},
		{"alias twice", "registries:\n  docker.io: {}\n  index.docker.io: {}\n", "configured twice"},
		{"missing CA", "registries:\n  x: {caFiles: [/nonexistent/ca.pem]}\n", `registries["x"].caFiles[0]`},
		{"CA not PEM", "registries:\n  x: {caFiles: [" + notPEM + "]}\n", "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTestFile(t, "registries.yaml", tc.content)
			_, err := LoadRegistryConfig(path)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %q, want it to name %s and %q", err, path, tc.want)
			}
		})
	}
	_, err := LoadRegistryConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	s := openStore(t)
	err = s.SetRegistries(RegistryConfig{Registries: map[string]RegistryHost{"x": {CAFiles: []string{notPEM}}}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("SetRegistries with a bad CA file: %v", err)
	}
}

// Where a normalised reference is pulled from, in order.
func TestEndpoints(t *testing.T) {
	hosts, err := RegistryConfig{Registries: map[string]RegistryHost{
		"index.docker.io":  {Mirrors: []string{"http://127.0.0.1:5000", "https://mirror.example.com/cache/"}},
		"registry.k8s.io":  {Mirrors: []string{"http://127.0.0.1:5000"}},
		"insecure.example": {Insecure: true},
	}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref  string
		want []string // label => reference
	}{
		{"docker.io/library/busybox:latest", []string{
			"mirror http://127.0.0.1:5000 => 127.0.0.1:5000/library/busybox:latest",
			"mirror https://mirror.example.com/cache => mirror.example.com/cache/library/busybox:latest",
			"registry docker.io => index.docker.io/library/busybox:latest",
		}},
		{"registry.k8s.io/pause@" + digest, []string{
			"mirror http://127.0.0.1:5000 => 127.0.0.1:5000/pause@" + digest,
			"registry registry.k8s.io => registry.k8s.io/pause@" + digest,
		}},
		{"insecure.example:8080/a/b:1", []string{"registry insecure.example:8080 => insecure.example:8080/a/b:1"}},
		{"quay.io/a/b:1", []string{"registry quay.io => quay.io/a/b:1"}},
	} {
		eps, err := hosts.endpoints(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ep := range eps {
			got = append(got, ep.label+" => "+ep.ref.Name())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("endpoints(%s) =\n%s\nwant\n%s", tc.ref, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	// Plain HTTP is allowed exactly where configured.
	eps, _ := hosts.endpoints("docker.io/library/busybox:latest")
	for i, want := range []bool{true, false, false} {
		if got := eps[i].transport.(schemeGuard).allowHTTP; got != want {
			t.Errorf("%s: plain HTTP allowed %v, want %v", eps[i].label, got, want)
		}
	}
	eps, _ = hosts.endpoints("insecure.example:8080/a/b:1")
	if !eps[0].transport.(schemeGuard).allowHTTP {
		t.Error("a bare host key does not cover its ports")
	}
}

func TestAuthMatchesServerAddress(t *testing.T) {
	for _, tc := range []struct {
		addr, host string
		used       bool
	}{
		{"", "anything.example", true},
		{"registry.example.com", "registry.example.com", true},
		{"https://registry.example.com:5000/v2/", "registry.example.com:5000", true},
		{"https://index.docker.io/v1/", "docker.io", true},
		{"registry.example.com", "other.example.com", false},
	} {
		a := &Auth{Username: "u", Password: "p", ServerAddress: tc.addr}
		got, err := a.authenticator(tc.host)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := got.Authorization()
		if used := cfg.Username == "u"; used != tc.used {
			t.Errorf("ServerAddress %q, host %s: credentials used %v, want %v", tc.addr, tc.host, used, tc.used)
		}
	}
}
