package network

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/libcni"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/netns"
)

// Teardown detaches the sandbox from the pod network (DEL). It is
// idempotent: a sandbox that is not attached, or whose namespace is gone,
// is torn down as far as possible and nil is returned. Each attachment
// libcni cached at ADD time is deleted with the config and arguments it
// was added with; without a cache entry for the pod network the current
// config is used. A missing namespace is passed as an empty netns, which
// still releases the IP lease (see the package doc for what it cannot do).
func (m *Manager) Teardown(ctx context.Context, a Attachment) error {
	if err := a.validate(); err != nil {
		return err
	}
	nsPath, err := m.liveNetNS(a)
	if err != nil {
		return err
	}
	cached, err := m.cni.GetCachedAttachments(a.SandboxID)
	if err != nil {
		return errdefs.Unavailable("tear down network for sandbox %s: read CNI cache: %w", a.SandboxID, err)
	}

	var errs []error
	podNetworkDone := false
	for _, c := range cached {
		list, err := libcni.NetworkConfFromBytes(c.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("cached config of network %q: %w", c.Network, err))
			continue
		}
		rt := &libcni.RuntimeConf{
			ContainerID:    a.SandboxID,
			NetNS:          nsPath,
			IfName:         c.IfName,
			Args:           c.CniArgs,
			CapabilityArgs: c.CapabilityArgs,
		}
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, classify(ctx, err, "network %q: %w", list.Name, err))
			continue
		}
		if c.IfName == podIfName {
			podNetworkDone = true
		}
	}

	if !podNetworkDone && len(errs) == 0 {
		// Nothing cached: a daemon that lost its cache, or an ADD that
		// never completed. DEL with today's config, if there is one; with
		// none there is nothing we could have set up through it.
		if list, err := m.network(); err == nil {
			if err := m.cni.DelNetworkList(ctx, list, a.runtimeConf(podIfName, nsPath)); err != nil {
				errs = append(errs, classify(ctx, err, "network %q: %w", list.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down network for sandbox %s: %w", a.SandboxID, err)
	}
	return nil
}

// liveNetNS returns a's namespace path if it still holds a namespace and
// "" if not (deleted, or a file left behind after unmounting).
func (m *Manager) liveNetNS(a Attachment) (string, error) {
	if a.NetNS == "" {
		return "", nil
	}
	ok, err := netns.IsNetNS(a.NetNS)
	if err != nil {
		return "", fmt.Errorf("tear down network for sandbox %s: %w", a.SandboxID, err)
	}
	if !ok {
		return "", nil
	}
	return a.NetNS, nil
}
