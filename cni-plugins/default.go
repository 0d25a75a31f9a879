package cniplugins

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"strings"
)

// ConflistName is the file name of the berth-managed network config in a
// CNI config directory. The runtime treats a file of this name as its own
// and never touches any other file.
const ConflistName = "10-berth.conflist"

//go:embed 10-berth.conflist
var defaultConflist []byte

// DefaultConflist returns a copy of the embedded default conflist, exactly
// as shipped.
func DefaultConflist() []byte {
	return append([]byte(nil), defaultConflist...)
}

// Options are the settings of the default network that a node may change.
// A zero field keeps the template's value.
type Options struct {
	// Name is the CNI network name (template: "berth"). host-local keeps
	// its leases and the plugins name their iptables chains after it.
	Name string
	// Bridge is the host bridge device (template: "berth0").
	Bridge string
	// Subnets are the pod subnets, at most one IPv4 and one IPv6 CIDR
	// (template: 10.88.0.0/16). Each becomes its own host-local range set,
	// so a dual-stack pod gets one address of each family; an IPv6 subnet
	// adds a ::/0 route, and a missing IPv4 subnet drops the 0.0.0.0/0 one.
	Subnets []string
	// DataDir is host-local's lease directory (template: unset, so
	// host-local uses its default /var/lib/cni/networks).
	DataDir string
}

// Conflist returns the default conflist with opts applied. It edits the
// parsed JSON, so fields it does not know about survive unchanged.
func Conflist(opts Options) ([]byte, error) {
	var list map[string]any
	if err := json.Unmarshal(defaultConflist, &list); err != nil {
		return nil, fmt.Errorf("parse embedded %s: %w", ConflistName, err)
	}
	if opts.Name != "" {
		if err := validateNetworkName(opts.Name); err != nil {
			return nil, err
		}
		list["name"] = opts.Name
	}
	bridge, ipam, err := bridgeAndIPAM(list)
	if err != nil {
		return nil, err
	}
	if opts.Bridge != "" {
		if err := validateBridgeName(opts.Bridge); err != nil {
			return nil, err
		}
		bridge["bridge"] = opts.Bridge
	}
	if len(opts.Subnets) > 0 {
		ranges, routes, err := rangesAndRoutes(opts.Subnets)
		if err != nil {
			return nil, err
		}
		ipam["ranges"] = ranges
		ipam["routes"] = routes
	}
	if opts.DataDir != "" {
		ipam["dataDir"] = opts.DataDir
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode conflist: %w", err)
	}
	return append(out, '\n'), nil
}

// bridgeAndIPAM finds the bridge plugin and its ipam section in a parsed
// conflist.
func bridgeAndIPAM(list map[string]any) (bridge, ipam map[string]any, err error) {
	plugins, _ := list["plugins"].([]any)
	for _, p := range plugins {
		conf, ok := p.(map[string]any)
		if !ok || conf["type"] != "bridge" {
			continue
		}
		ipam, ok := conf["ipam"].(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("embedded %s: bridge plugin has no ipam section", ConflistName)
		}
		return conf, ipam, nil
	}
	return nil, nil, fmt.Errorf("embedded %s: no bridge plugin", ConflistName)
}

// rangesAndRoutes turns pod subnets into host-local "ranges" (one range
// set per subnet) and default routes for the families present.
func rangesAndRoutes(subnets []string) (ranges, routes []any, err error) {
	var v4, v6 bool
	for _, s := range subnets {
		ip, ipnet, err := net.ParseCIDR(strings.TrimSpace(s))
		if err != nil {
			return nil, nil, fmt.Errorf("pod subnet %q: %w", s, err)
		}
		if ip.To4() != nil {
			if v4 {
				return nil, nil, fmt.Errorf("pod subnets %q: more than one IPv4 subnet", subnets)
			}
			v4 = true
		} else {
			if v6 {
				return nil, nil, fmt.Errorf("pod subnets %q: more than one IPv6 subnet", subnets)
			}
			v6 = true
		}
		ranges = append(ranges, []any{map[string]any{"subnet": ipnet.String()}})
	}
	if v4 {
		routes = append(routes, map[string]any{"dst": "0.0.0.0/0"})
	}
	if v6 {
		routes = append(routes, map[string]any{"dst": "::/0"})
	}
	return ranges, routes, nil
}

// validateBridgeName applies the kernel's rules for interface names.
func validateBridgeName(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("bridge name %q: longer than 15 bytes", name)
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("bridge name %q: not a valid interface name", name)
	}
	return nil
}

// validateNetworkName applies CNI's rule for network names, which become
// file and chain names.
func validateNetworkName(name string) error {
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '_' && r != '.' && r != '-') {
			return fmt.Errorf("network name %q: must be letters, digits, '_', '.' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}
