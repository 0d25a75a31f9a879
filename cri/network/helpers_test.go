package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"

	cniplugins "github.com/berth-project/berth/cni-plugins"
	"github.com/berth-project/berth/cri/netns"
)

// The reference plugins the tests run, built by `make build`.
var pluginNames = []string{"bridge", "host-local", "loopback", "portmap"}

func requiresRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and iptables rules")
	}
}

// pluginDir returns bin/cni of this module, skipping the test when the
// plugins are not built.
func pluginDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "bin", "cni"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pluginNames {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Skipf("reference CNI plugin %s not built in %s: run `make build` (or go build -o bin/cni/ the plugins listed in cni-plugins/README.md)", p, dir)
		}
	}
	return dir
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freeSubnet picks a random 10.x.y.0/24 that no host route or address
// overlaps.
func freeSubnet(t *testing.T) *net.IPNet {
	t.Helper()
	var used []*net.IPNet
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
			used = append(used, r.Dst)
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		used = append(used, a.IPNet)
	}
	for range 100 {
		b := make([]byte, 2)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		cand := &net.IPNet{IP: net.IPv4(10, 100+b[0]%150, b[1], 0).To4(), Mask: net.CIDRMask(24, 32)}
		clash := false
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				clash = true
				break
			}
		}
		if !clash {
			return cand
		}
	}
	t.Fatal("no free 10.x.y.0/24 on this host")
	return nil
}

// testNet is a pod network of its own: unique network name, bridge,
// subnet and lease directory, so tests never meet a running berth or a
// parallel run.
type testNet struct {
	name, bridge string
	subnet       *net.IPNet
	dataDir      string // host-local dataDir; leases are in dataDir/name
	confDir      string
	binDir       string
	m            *Manager
}

// newTestNet prepares the names and directories and registers the
// clean-up of the bridge and a check that no iptables rule of the
// network is left. It writes no config: see writeConf.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requiresRoot(t)
	id := randomHex(t, 4)
	n := &testNet{
		name:    "berth-test-" + id,
		bridge:  "bt" + id,
		subnet:  freeSubnet(t),
		dataDir: t.TempDir(),
		confDir: t.TempDir(),
		binDir:  pluginDir(t),
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(n.bridge); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("delete bridge %s: %v", n.bridge, err)
			}
		}
	})
	t.Cleanup(func() { n.checkNoIptablesLeft(t) })
	var err error
	n.m, err = New(Config{
		ConfDir:            n.confDir,
		BinDirs:            []string{n.binDir},
		CacheDir:           t.TempDir(),
		DefaultNetworkName: n.name,
		DefaultBridge:      n.bridge,
		DefaultIPAMDataDir: n.dataDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// conflist is the default network rewritten for this test network.
func (n *testNet) conflist(t *testing.T) []byte {
	t.Helper()
	data, err := cniplugins.Conflist(cniplugins.Options{
		Name: n.name, Bridge: n.bridge, Subnets: []string{n.subnet.String()}, DataDir: n.dataDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (n *testNet) writeConf(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.confDir, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pod is one sandbox attached to a testNet.
type pod struct {
	a   Attachment
	ips []string
}

// attachment makes a network namespace and the Attachment for a pod; the
// namespace is removed at clean-up.
func (n *testNet) attachment(t *testing.T, name string, ports ...PortMapping) Attachment {
	t.Helper()
	path, err := netns.New(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Remove(path); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	return Attachment{
		SandboxID:    randomHex(t, 32),
		NetNS:        path,
		PodName:      name,
		PodNamespace: "default",
		PodUID:       randomHex(t, 16),
		PortMappings: ports,
	}
}

// setup attaches a new pod and registers its teardown (which runs before
// its namespace is removed, and also removes the masquerade rules a
// teardown without namespace leaves behind).
func (n *testNet) setup(t *testing.T, name string, ports ...PortMapping) pod {
	t.Helper()
	a := n.attachment(t, name, ports...)
	res, err := n.m.Setup(ctx(t), a)
	if err != nil {
		t.Fatalf("Setup %s: %v", name, err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := n.m.Teardown(cctx, a); err != nil {
			t.Errorf("Teardown %s: %v", name, err)
		}
		for _, s := range res.IPs {
			ipn := &net.IPNet{IP: net.ParseIP(s), Mask: net.CIDRMask(32, 32)}
			if err := ip.TeardownIPMasqForNetworks([]*net.IPNet{ipn}, n.name, podIfName, a.SandboxID); err != nil {
				t.Errorf("remove masquerade rules of %s: %v", name, err)
			}
		}
	})
	return pod{a: a, ips: res.IPs}
}

// leaseFile is where host-local records that ip is taken.
func (n *testNet) leaseFile(ip string) string {
	return filepath.Join(n.dataDir, n.name, ip)
}

// checkNoIptablesLeft fails the test if any iptables rule mentioning the
// network is left (portmap and bridge name their rules after it).
func (n *testNet) checkNoIptablesLeft(t *testing.T) {
	t.Helper()
	ipt, err := iptables.New()
	if err != nil {
		t.Errorf("iptables: %v", err)
		return
	}
	for _, table := range []string{"nat", "filter"} {
		chains, err := ipt.ListChains(table)
		if err != nil {
			t.Errorf("list %s chains: %v", table, err)
			continue
		}
		for _, c := range chains {
			rules, err := ipt.List(table, c)
			if err != nil {
				continue // deleted meanwhile
			}
			for _, r := range rules {
				if strings.Contains(r, n.name) {
					t.Errorf("iptables rule of network %s left in %s/%s: %s", n.name, table, c, r)
				}
			}
		}
	}
}

// inNetNS runs f on a thread in the namespace at path.
func inNetNS(t *testing.T, path string, f func() error) error {
	t.Helper()
	target, err := ns.GetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	return target.Do(func(ns.NetNS) error { return f() })
}

// serve listens on addr inside the namespace at path (the socket stays in
// that namespace) and answers every connection with greeting.
func serve(t *testing.T, path, addr, greeting string) {
	t.Helper()
	var l net.Listener
	err := inNetNS(t, path, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, path, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(greeting))
			c.Close()
		}
	}()
}

// fetch connects to addr (from inside the namespace at path, or from the
// host when path is "") and returns what the server says.
func fetch(t *testing.T, path, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 10*time.Second)
		return err
	}
	var err error
	if path == "" {
		err = dial()
	} else {
		err = inNetNS(t, path, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	buf := make([]byte, 256)
	for {
		k, err := c.Read(buf)
		b.Write(buf[:k])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return b.String(), err
		}
		if err != nil {
			return b.String(), nil
		}
	}
}

// ctx is a per-test deadline for CNI calls.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// withPlugin returns the conflist with one more plugin chained at the end.
func withPlugin(t *testing.T, conflist []byte, plugin map[string]any) []byte {
	t.Helper()
	var list map[string]any
	if err := json.Unmarshal(conflist, &list); err != nil {
		t.Fatal(err)
	}
	list["plugins"] = append(list["plugins"].([]any), plugin)
	out, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
