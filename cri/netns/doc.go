// Package netns creates and removes persistent network namespaces: a new
// namespace is bind-mounted on a file in a directory the caller chooses, the
// way `ip netns add` does under /run/netns, so that it lives on without any
// process in it. A pod sandbox's namespace is made here before the pause
// container starts; runc joins it by path and CNI plugins configure it by
// path.
//
// The bind mount is made wherever the directory is, and the directory's
// propagation is left as the host has it: New neither makes it a mount
// point nor changes it to private, so nothing is left mounted on the host
// after the last Remove. On a shared mount (as / is under systemd) the bind
// mount propagates to the peers and slaves of that mount and the
// MNT_DETACH unmount in Remove propagates the same way; only a mount
// namespace copied privately while the namespace existed keeps it alive
// until that mount namespace goes. Nothing here enters a namespace: code
// that must run inside one uses ns.Do from
// github.com/containernetworking/plugins/pkg/ns.
package netns
