package oci

import (
	"maps"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The annotations containerd's CRI plugin puts in every OCI spec, which
// OCI hooks, NRI plugins and security tools read to know what a bundle
// is: the request's own annotations, then these.
const (
	annotationContainerType    = "io.kubernetes.cri.container-type"
	annotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	annotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	annotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	annotationSandboxLogDir    = "io.kubernetes.cri.sandbox-log-directory"
	annotationContainerName    = "io.kubernetes.cri.container-name"
	annotationImageName        = "io.kubernetes.cri.image-name"
)

func criAnnotations(own map[string]string, kind, sandboxID string, sb *runtimeapi.PodSandboxConfig) map[string]string {
	out := maps.Clone(own)
	if out == nil {
		out = map[string]string{}
	}
	md := sb.GetMetadata()
	out[annotationContainerType] = kind
	out[annotationSandboxID] = sandboxID
	out[annotationSandboxName] = md.GetName()
	out[annotationSandboxNamespace] = md.GetNamespace()
	out[annotationSandboxUID] = md.GetUid()
	return out
}

func containerAnnotations(cfg *runtimeapi.ContainerConfig, sandboxID string, sb *runtimeapi.PodSandboxConfig) map[string]string {
	out := criAnnotations(cfg.GetAnnotations(), "container", sandboxID, sb)
	out[annotationContainerName] = cfg.GetMetadata().GetName()
	image := cfg.GetImage().GetUserSpecifiedImage()
	if image == "" {
		image = cfg.GetImage().GetImage()
	}
	out[annotationImageName] = image
	return out
}

func sandboxAnnotations(cfg *runtimeapi.PodSandboxConfig, id string) map[string]string {
	out := criAnnotations(cfg.GetAnnotations(), "sandbox", id, cfg)
	out[annotationSandboxLogDir] = cfg.GetLogDirectory()
	return out
}
