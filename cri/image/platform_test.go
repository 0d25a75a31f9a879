package image

import (
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPlatformPick(t *testing.T) {
	desc := func(name, os, arch, variant string) v1.Descriptor {
		return v1.Descriptor{
			Annotations: map[string]string{"name": name},
			Platform:    &v1.Platform{OS: os, Architecture: arch, Variant: variant},
		}
	}
	index := []v1.Descriptor{
		{Annotations: map[string]string{"name": "attestation"}}, // no platform
		desc("s390x", "linux", "s390x", ""),
		desc("windows", "windows", "amd64", ""),
		desc("arm-v5", "linux", "arm", "v5"),
		desc("arm-v6", "linux", "arm", "v6"),
		desc("arm-v7", "linux", "arm", "v7"),
		desc("arm64-v8", "linux", "arm64", "v8"),
		desc("amd64", "linux", "amd64", ""),
		desc("amd64-v3", "linux", "amd64", "v3"),
		desc("riscv64", "linux", "riscv64", ""),
	}
	for _, tc := range []struct {
		host platform
		want string // "" for none
	}{
		{platform{"linux", "amd64", "v1"}, "amd64"},
		{platform{"linux", "amd64", "v3"}, "amd64-v3"},
		{platform{"linux", "arm64", ""}, "arm64-v8"},
		{platform{"linux", "arm", "v7"}, "arm-v7"},
		{platform{"linux", "arm", "v6"}, "arm-v6"},
		{platform{"linux", "riscv64", ""}, "riscv64"},
		{platform{"linux", "ppc64le", ""}, ""},
		{platform{"windows", "amd64", ""}, "windows"},
	} {
		got, ok := tc.host.pick(index)
		if name := got.Annotations["name"]; ok != (tc.want != "") || name != tc.want {
			t.Errorf("%s picks %q (%v), want %q", tc.host, name, ok, tc.want)
		}
	}

	// Older variants serve when the host's own is missing; aliases and
	// an empty arm64 variant count.
	for _, tc := range []struct {
		host  platform
		index []v1.Descriptor
		want  string
	}{
		{platform{"linux", "arm", "v7"}, []v1.Descriptor{desc("v5", "linux", "arm", "v5"), desc("v6", "linux", "arm", "v6")}, "v6"},
		{platform{"linux", "arm", "v6"}, []v1.Descriptor{desc("v7", "linux", "arm", "v7")}, ""},
		{platform{"linux", "arm", "v7"}, []v1.Descriptor{desc("armhf", "linux", "armhf", "")}, "armhf"},
		{platform{"linux", "arm64", "v8"}, []v1.Descriptor{desc("plain", "linux", "arm64", "")}, "plain"},
		{platform{"linux", "arm64", "v8"}, []v1.Descriptor{desc("aarch64", "linux", "aarch64", "")}, "aarch64"},
		{platform{"linux", "amd64", "v1"}, []v1.Descriptor{desc("x86_64", "linux", "x86_64", ""), desc("second", "linux", "amd64", "")}, "x86_64"},
	} {
		got, ok := tc.host.pick(tc.index)
		if name := got.Annotations["name"]; ok != (tc.want != "") || name != tc.want {
			t.Errorf("%s picks %q (%v) from %d entries, want %q", tc.host, name, ok, len(tc.index), tc.want)
		}
	}
}

func TestHostPlatform(t *testing.T) {
	p := hostPlatform()
	if p.os != runtime.GOOS || p.arch != runtime.GOARCH {
		t.Errorf("hostPlatform() = %s", p)
	}
	if _, ok := p.rank(v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}); !ok {
		t.Errorf("%s does not run an image for %s/%s", p, runtime.GOOS, runtime.GOARCH)
	}
}
