package server

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// Bounds of what one request may carry, in the spirit of the Kubernetes
// API server's validation: what it never sends, berth refuses, naming
// the field, so that no client can make every list answer fail or
// berthd's memory grow by sending one large sandbox.
const (
	maxNameLen       = 253       // a DNS-1123 subdomain: pod and container names
	maxNamespaceLen  = 63        // a DNS-1123 label
	maxUIDLen        = 128       // UUIDs and the hashes static pods use are far shorter
	maxHostnameLen   = 64        // the kernel's HOST_NAME_MAX
	maxAnnotations   = 256 << 10 // in total, kubelet's TotalAnnotationSizeLimitB
	maxLabels        = 64 << 10  // in total
	maxLabelKeyLen   = 317       // prefix (253) / name (63)
	maxEnvBytes      = 1 << 20   // environment, in total
	maxArgBytes      = 1 << 20   // command and args, in total
	maxListAnswerLen = 15 << 20  // below the 16 MiB gRPC message limit
)

// checkName refuses what no Kubernetes object name holds: nothing, too
// long, control characters, a path separator or "..".
func checkName(field, v string, limit int) error {
	switch {
	case v == "":
		return errdefs.InvalidArgument("%s is required", field)
	case len(v) > limit:
		return errdefs.InvalidArgument("%s is %d bytes long: at most %d", field, len(v), limit)
	case strings.ContainsFunc(v, unicode.IsControl):
		return errdefs.InvalidArgument("%s %q holds a control character", field, v)
	case strings.Contains(v, "/"), strings.Contains(v, ".."):
		return errdefs.InvalidArgument("%s %q holds a / or ..", field, v)
	}
	return nil
}

// checkHostname refuses what sethostname and the CNI plugins cannot take.
func checkHostname(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > maxHostnameLen {
		return errdefs.InvalidArgument("config.hostname is %d bytes long: at most %d", len(v), maxHostnameLen)
	}
	for _, r := range v {
		if !(r == '-' || r == '.' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errdefs.InvalidArgument("config.hostname %q: only letters, digits, '-', '.' and '_' make a host name", v)
		}
	}
	return nil
}

// checkMaps bounds labels and annotations.
func checkMaps(field string, labels, annotations map[string]string) error {
	size := 0
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if len(k) > maxLabelKeyLen || k == "" {
			return errdefs.InvalidArgument("%s.labels: key %.64q is %d bytes long: from 1 to %d", field, k, len(k), maxLabelKeyLen)
		}
		size += len(k) + len(labels[k])
	}
	if size > maxLabels {
		return errdefs.InvalidArgument("%s.labels are %d bytes in total: at most %d", field, size, maxLabels)
	}
	size = 0
	for k, v := range annotations {
		size += len(k) + len(v)
	}
	if size > maxAnnotations {
		return errdefs.InvalidArgument("%s.annotations are %d bytes in total: at most %d (as the Kubernetes API allows)", field, size, maxAnnotations)
	}
	return nil
}

// checkSandboxBounds checks a sandbox config's names and sizes.
func checkSandboxBounds(cfg *runtimeapi.PodSandboxConfig) error {
	md := cfg.GetMetadata()
	for _, c := range []struct {
		field, v string
		limit    int
	}{
		{"config.metadata.name", md.GetName(), maxNameLen},
		{"config.metadata.namespace", md.GetNamespace(), maxNamespaceLen},
		{"config.metadata.uid", md.GetUid(), maxUIDLen},
	} {
		if err := checkName(c.field, c.v, c.limit); err != nil {
			return err
		}
	}
	if err := checkHostname(cfg.GetHostname()); err != nil {
		return err
	}
	return checkMaps("config", cfg.GetLabels(), cfg.GetAnnotations())
}

// checkContainerBounds checks a container config's name and sizes.
func checkContainerBounds(cfg *runtimeapi.ContainerConfig) error {
	if err := checkName("config.metadata.name", cfg.GetMetadata().GetName(), maxNameLen); err != nil {
		return err
	}
	if err := checkMaps("config", cfg.GetLabels(), cfg.GetAnnotations()); err != nil {
		return err
	}
	size := 0
	for i, e := range cfg.GetEnvs() {
		if strings.ContainsRune(e.GetKey(), 0) || bytes.IndexByte(e.GetValue(), 0) >= 0 || strings.Contains(e.GetKey(), "=") || e.GetKey() == "" {
			return errdefs.InvalidArgument("config.envs[%d]: key %.64q: a name without '=' or NUL, and a value without NUL", i, e.GetKey())
		}
		size += len(e.GetKey()) + len(e.GetValue()) + 2
	}
	if size > maxEnvBytes {
		return errdefs.InvalidArgument("config.envs are %d bytes in total: at most %d", size, maxEnvBytes)
	}
	size = 0
	for _, a := range append(slices.Clone(cfg.GetCommand()), cfg.GetArgs()...) {
		if strings.ContainsRune(a, 0) {
			return errdefs.InvalidArgument("config.command and args: %.64q holds a NUL", a)
		}
		size += len(a) + 1
	}
	if size > maxArgBytes {
		return errdefs.InvalidArgument("config.command and args are %d bytes in total: at most %d", size, maxArgBytes)
	}
	return nil
}

// trimAnswer keeps a list answer under the gRPC message limit by leaving
// out the annotations of the items that hold the most, largest first
// (records written before the bounds may exceed them). It says how many
// it trimmed: a listing that fails would fail every client.
func trimAnswer[T proto.Message](msg proto.Message, items []T, annotations func(T) map[string]string, clear func(T)) int {
	size := proto.Size(msg)
	if size <= maxListAnswerLen {
		return 0
	}
	order := slices.Clone(items)
	weight := func(x T) int {
		n := 0
		for k, v := range annotations(x) {
			n += len(k) + len(v)
		}
		return n
	}
	slices.SortFunc(order, func(a, b T) int { return weight(b) - weight(a) })
	trimmed := 0
	for _, x := range order {
		if size <= maxListAnswerLen || weight(x) == 0 {
			break
		}
		clear(x)
		trimmed++
		size = proto.Size(msg)
	}
	return trimmed
}

func trimmedNote(kind string, n int) string {
	return fmt.Sprintf("%s: the answer would exceed the gRPC message limit; the annotations of %d items were left out", kind, n)
}
