// Package network attaches pod sandboxes to the pod network through CNI
// (libcni driving the reference plugins, see cni-plugins/).
//
// The pod network is the first *.conflist / *.conf / *.json file, in lexical
// order, in the CNI config directory that loads (a file that does not parse
// is skipped, as kubelet and containerd do). The directory is re-checked on
// every call, by file names, sizes and mtimes, so a config dropped in makes
// the node ready without a restart. Ready says why the network is not
// usable; the CRI edge reports that as NetworkReady=false with reason
// NetworkPluginNotReady.
//
// A sandbox is attached in two steps, each a libcni network list: the
// loopback plugin brings lo up in the sandbox namespace, then the pod
// network's ADD creates eth0 (ifname "eth0") and publishes host ports
// (capability "portMappings"). Kubernetes identity goes in CNI_ARGS
// (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID,
// IgnoreUnknown=1). A failed Setup runs DEL before returning, so it leaves
// no lease, veth or iptables rule behind.
//
// Teardown runs DEL with the config and arguments libcni cached at ADD time
// (under Config.CacheDir), so it still works after the config directory
// changed; without a cache entry it falls back to the current config. When
// the namespace file is gone it passes an empty netns, as the CNI spec
// allows, which still releases the IP lease. Call Teardown before removing
// the namespace, though: the bridge plugin finds the masquerade rules to
// delete from the addresses of eth0, so without the namespace those rules
// stay until the node's iptables are flushed.
//
// UpdatePodCIDR writes berth's default network (cniplugins.Conflist) with
// the node's pod subnet, but only into a directory that holds no config or
// only berth's own 10-berth.conflist.
//
// Errors are classified with cri/errdefs: bad requests are InvalidArgument,
// a network that is not ready or a config a plugin rejects is
// FailedPrecondition, other plugin failures are Unavailable (retryable), a
// deadline hit is DeadlineExceeded.
package network
