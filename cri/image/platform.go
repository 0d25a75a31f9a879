package image

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// platform is an OS, architecture and variant, normalised: Go's names
// ("amd64", "arm64"), and the variant spelled out where an empty one has a
// meaning ("arm64" is "v8", "arm" is "v7", "amd64" is "v1").
type platform struct{ os, arch, variant string }

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// hostPlatform is the platform this binary runs on: GOOS and GOARCH, with
// the variant it was built for (GOARM for arm, GOAMD64 for amd64), which
// the CPU must support for the binary to run at all.
func hostPlatform() platform {
	p := platform{os: runtime.GOOS, arch: runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "GOARM" && p.arch == "arm":
				// "7", or "7,softfloat" since Go 1.22.
				p.variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
			case s.Key == "GOAMD64" && p.arch == "amd64":
				p.variant = s.Value
			}
		}
	}
	return normalizePlatform(p)
}

// normalizePlatform maps the other names images use to Go's.
func normalizePlatform(p platform) platform {
	p.os = strings.ToLower(p.os)
	p.arch = strings.ToLower(p.arch)
	switch p.arch {
	case "x86_64", "x86-64":
		p.arch = "amd64"
	case "aarch64":
		p.arch = "arm64"
	case "armhf":
		p.arch, p.variant = "arm", "v7"
	case "armel":
		p.arch, p.variant = "arm", "v6"
	case "i386", "i686":
		p.arch = "386"
	}
	if p.variant == "" {
		switch p.arch {
		case "arm64":
			p.variant = "v8"
		case "arm":
			p.variant = "v7"
		case "amd64":
			p.variant = "v1"
		}
	}
	return p
}

// pick returns the descriptor whose image best fits p: a variant p runs
// natively before an older one it also runs; the first of equals, which is
// the one registries and containerd default to. Descriptors without a
// platform (attestations, artifacts) never fit.
func (p platform) pick(descs []v1.Descriptor) (v1.Descriptor, bool) {
	best, bestRank := v1.Descriptor{}, -1
	for _, d := range descs {
		if d.Platform == nil {
			continue
		}
		r, ok := p.rank(*d.Platform)
		if ok && (bestRank < 0 || r < bestRank) {
			best, bestRank = d, r
		}
	}
	return best, bestRank >= 0
}

// rank says whether an image built for q runs on p and, if so, how well:
// 0 is an exact fit, higher ranks are older variants. arm and amd64
// variants are levels that a CPU supports up to some number (an arm/v7 CPU
// runs v6 and v5 code, an amd64 v3 CPU runs v2 and v1); other variants
// must match.
func (p platform) rank(q v1.Platform) (int, bool) {
	host, img := normalizePlatform(p), normalizePlatform(platform{os: q.OS, arch: q.Architecture, variant: q.Variant})
	if host.os != img.os || host.arch != img.arch {
		return 0, false
	}
	switch host.arch {
	case "arm", "amd64":
		have, ok1 := variantLevel(host.variant)
		want, ok2 := variantLevel(img.variant)
		if !ok1 || !ok2 || want > have {
			return 0, false
		}
		return have - want, true
	default:
		if img.variant != host.variant && img.variant != "" && host.variant != "" {
			return 0, false
		}
		return 0, true
	}
}

// variantLevel parses "v7" as 7.
func variantLevel(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	return n, err == nil && strings.HasPrefix(v, "v") && n > 0
}
