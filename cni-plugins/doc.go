// Package cniplugins holds berth's default pod network: a CNI conflist that
// wires pods to a Linux bridge with the reference plugins (bridge +
// host-local IPAM + portmap; loopback is run by the runtime on its own).
//
// The file 10-berth.conflist next to this one is what `make install` puts in
// /etc/cni/net.d on a node that has no network config yet. The runtime uses
// the same file, embedded here, as the template it fills in when the node is
// given a pod CIDR (cri/network's UpdatePodCIDR).
package cniplugins
