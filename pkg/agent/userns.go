package agent

import (
	"context"
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/userns"
)

// annotationHostIDs records on the sandbox of a pod with its own user
// namespace the first host ID of its block, so that a restarted agent
// knows which blocks are taken.
const annotationHostIDs = "berth.io/userns-host-id"

// hostIDs hands out the blocks of host IDs of pods with their own user
// namespace (pkg/userns).
type hostIDs interface {
	Allocate(pod types.UID) (uint32, error)
	Assign(pod types.UID, hostID uint32) error
	Release(pod types.UID)
}

func ownUsers(pod *v1.Pod) bool { return pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers }

// userNamespace is the user namespace of a pod with hostUsers: false,
// nil for one with the host's users: its own block of host IDs, mapped
// from ID 0, the same for UIDs and GIDs.
func (m *Manager) userNamespace(ctx context.Context, pod *v1.Pod) (*runtimeapi.UserNamespace, error) {
	if !ownUsers(pod) {
		return nil, nil
	}
	m.idsMu.Lock()
	defer m.idsMu.Unlock()
	if !m.idsKnown {
		if err := m.recoverHostIDs(ctx); err != nil {
			return nil, fmt.Errorf("user namespace: %w", err)
		}
		m.idsKnown = true
	}
	first, err := m.ids.Allocate(pod.UID)
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	return mapFrom(first), nil
}

func mapFrom(first uint32) *runtimeapi.UserNamespace {
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: first, Length: userns.Size}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}
}

// sandboxUserNamespace is the user namespace a running sandbox of the pod
// was created with, read from the host ID its annotation records, so that
// a new container joins its sandbox's mapping even where the allocator
// could not take the block back in after a restart.
func sandboxUserNamespace(pod *v1.Pod, sandboxID, recorded string) (*runtimeapi.UserNamespace, error) {
	if !ownUsers(pod) {
		return nil, nil
	}
	first, err := strconv.ParseUint(recorded, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s records no user namespace (annotation %s=%q) for a pod with hostUsers: false", sandboxID, annotationHostIDs, recorded)
	}
	return mapFrom(uint32(first)), nil
}

// recoverHostIDs takes in the blocks that the runtime's sandboxes hold,
// before the first block is handed out after a start.
func (m *Manager) recoverHostIDs(ctx context.Context) error {
	resp, err := m.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManaged: "true"}},
	})
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, sb := range resp.GetItems() {
		v, ok := sb.GetAnnotations()[annotationHostIDs]
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(v, 10, 32)
		if err == nil {
			err = m.ids.Assign(types.UID(sb.GetMetadata().GetUid()), uint32(first))
		}
		if err != nil {
			m.cfg.Log.Warn("sandbox's user namespace IDs not taken in", "sandbox", sb.GetId(), "annotation", annotationHostIDs, "value", v, "err", err)
		}
	}
	return nil
}

// withUserNamespace puts the pod's user namespace, if it has one, into
// its sandbox's config and, for a container, into the container's, whose
// volumes become idmapped mounts: a file the volume's root owns on disk
// belongs to the pod's root, as kubelet and containerd do for such pods.
func withUserNamespace(us *runtimeapi.UserNamespace, sb *runtimeapi.PodSandboxConfig, c *runtimeapi.ContainerConfig) {
	if us == nil {
		return
	}
	sb.Linux.SecurityContext.NamespaceOptions.UsernsOptions = us
	sb.Annotations[annotationHostIDs] = strconv.FormatUint(uint64(us.Uids[0].HostId), 10)
	if c == nil {
		return
	}
	c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = us
	for _, mnt := range c.Mounts {
		mnt.UidMappings, mnt.GidMappings = us.Uids, us.Gids
	}
}
