package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The annotations kubelet puts on static pods, which mirror pods carry
// to the API server too.
const (
	SourceAnnotation = "kubernetes.io/config.source"
	HashAnnotation   = "kubernetes.io/config.hash"
)

// SourceAnnotation values, kubelet's: pods read from files and from a
// manifest URL. Both are static pods: no API server has them.
const (
	FileSource = "file"
	HTTPSource = "http"
)

// IsStatic reports whether p was read from a manifest file or URL.
func IsStatic(p *v1.Pod) bool {
	if p == nil {
		return false
	}
	s := p.Annotations[SourceAnnotation]
	return s == FileSource || s == HTTPSource
}

// makeStatic names a defaulted, valid pod as kubelet names a pod from a
// file: the node name is appended to its name, so that the same manifest
// on two nodes gives two pods, and its UID is a hash of its content, so
// that an unchanged file gives the same pod after any restart while any
// edit gives a new pod (which replaces the old one).
func makeStatic(pod *v1.Pod, nodeName, source string) error {
	hash, err := contentHash(pod, nodeName, source)
	if err != nil {
		return err
	}
	pod.Name += "-" + nodeName
	pod.UID = types.UID(hash)
	pod.Spec.NodeName = nodeName
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[SourceAnnotation] = source
	pod.Annotations[HashAnnotation] = hash
	return nil
}

// contentHash is 32 hex digits of the SHA-256 of the pod's JSON (which
// encoding/json writes deterministically: fields in declaration order,
// map keys sorted), the node name and the source.
func contentHash(pod *v1.Pod, nodeName, source string) (string, error) {
	data, err := json.Marshal(pod)
	if err != nil {
		return "", fmt.Errorf("hash pod: %w", err)
	}
	h := sha256.New()
	h.Write(data)
	fmt.Fprintf(h, "\x00node:%s\x00source:%s", nodeName, source)
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}
