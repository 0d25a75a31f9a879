package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/utils"
	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	cniplugins "github.com/berth-project/berth/cni-plugins"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/netns"
)

// TestTwoPodsTalk attaches two pods and checks what a user would: each has
// an address of the subnet on eth0, lo is up, and one reaches the other
// over TCP.
func TestTwoPodsTalk(t *testing.T) {
	n := newTestNet(t)
	n.writeConf(t, "10-test.conflist", n.conflist(t))
	if err := n.m.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	a, b := n.setup(t, "pod-a"), n.setup(t, "pod-b")

	for _, p := range []pod{a, b} {
		if len(p.ips) != 1 {
			t.Fatalf("%s: IPs %v, want one", p.a.PodName, p.ips)
		}
		ip := net.ParseIP(p.ips[0])
		if !n.subnet.Contains(ip) {
			t.Errorf("%s: IP %s not in %s", p.a.PodName, ip, n.subnet)
		}
		if _, err := os.Stat(n.leaseFile(p.ips[0])); err != nil {
			t.Errorf("%s: no host-local lease: %v", p.a.PodName, err)
		}
		err := inNetNS(t, p.a.NetNS, func() error {
			eth0, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			if eth0.Type() != "veth" {
				t.Errorf("%s: eth0 is a %s, want veth", p.a.PodName, eth0.Type())
			}
			addrs, err := netlink.AddrList(eth0, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			if len(addrs) != 1 || !addrs[0].IP.Equal(ip) {
				t.Errorf("%s: eth0 addresses %v, want %s", p.a.PodName, addrs, ip)
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if lo.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("%s: lo is down", p.a.PodName)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: inspect netns: %v", p.a.PodName, err)
		}
	}
	if a.ips[0] == b.ips[0] {
		t.Fatalf("both pods got %s", a.ips[0])
	}

	serve(t, b.a.NetNS, ":8080", "hello from b")
	got, err := fetch(t, a.a.NetNS, net.JoinHostPort(b.ips[0], "8080"))
	if err != nil || got != "hello from b" {
		t.Fatalf("a → b: %q, %v", got, err)
	}
}

// TestTeardownFreesLease: teardown releases the IP and removes eth0; a
// second teardown is a no-op.
func TestTeardownFreesLease(t *testing.T) {
	n := newTestNet(t)
	n.writeConf(t, "10-test.conflist", n.conflist(t))
	p := n.setup(t, "pod")
	lease := n.leaseFile(p.ips[0])
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("no lease after Setup: %v", err)
	}
	masq := utils.FormatChainName(n.name, p.a.SandboxID)
	if !chainExists(t, masq) {
		t.Fatalf("masquerade chain %s missing after Setup", masq)
	}

	if err := n.m.Teardown(ctx(t), p.a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease %s still there after Teardown: %v", lease, err)
	}
	if chainExists(t, masq) {
		t.Errorf("masquerade chain %s left after Teardown", masq)
	}
	err := inNetNS(t, p.a.NetNS, func() error {
		_, err := netlink.LinkByName("eth0")
		return err
	})
	if err == nil {
		t.Error("eth0 still in the namespace after Teardown")
	}
	if err := n.m.Teardown(ctx(t), p.a); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
}

// TestTeardownAfterNetNSRemoved: with the namespace gone, teardown still
// frees the lease.
func TestTeardownAfterNetNSRemoved(t *testing.T) {
	n := newTestNet(t)
	n.writeConf(t, "10-test.conflist", n.conflist(t))
	p := n.setup(t, "pod")
	lease := n.leaseFile(p.ips[0])
	if err := netns.Remove(p.a.NetNS); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Teardown(ctx(t), p.a); err != nil {
		t.Fatalf("Teardown without netns: %v", err)
	}
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease %s still there: %v", lease, err)
	}

	// A namespace file left behind unmounted is treated as gone too.
	q := n.setup(t, "pod-2")
	if err := unmount(q.a.NetNS); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Teardown(ctx(t), q.a); err != nil {
		t.Fatalf("Teardown with an unmounted netns file: %v", err)
	}
	if _, err := os.Stat(n.leaseFile(q.ips[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease of pod-2 still there: %v", err)
	}
}

// TestTeardownUsesCachedConfig: the config directory changes (here: the
// network is removed) after Setup; Teardown still deletes with the config
// the pod was added with.
func TestTeardownUsesCachedConfig(t *testing.T) {
	n := newTestNet(t)
	n.writeConf(t, "10-test.conflist", n.conflist(t))
	p := n.setup(t, "pod")
	if err := os.Remove(filepath.Join(n.confDir, "10-test.conflist")); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Ready(); err == nil {
		t.Fatal("Ready with an empty config directory")
	}
	if err := n.m.Teardown(ctx(t), p.a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(n.leaseFile(p.ips[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease still there: %v", err)
	}
}

// TestPortMapping: a hostPort reaches the pod through the host.
func TestPortMapping(t *testing.T) {
	n := newTestNet(t)
	n.writeConf(t, "10-test.conflist", n.conflist(t))
	hostPort := freePort(t)
	p := n.setup(t, "web", PortMapping{HostPort: hostPort, ContainerPort: 80, Protocol: "TCP"})
	serve(t, p.a.NetNS, ":80", "hello from web")

	dnat := utils.MustFormatChainNameWithPrefix(n.name, p.a.SandboxID, "DN-")
	if !chainExists(t, dnat) {
		t.Fatalf("portmap chain %s missing after Setup", dnat)
	}
	gateway := gatewayIP(t, n)
	for _, host := range []string{"127.0.0.1", gateway} {
		addr := net.JoinHostPort(host, fmt.Sprint(hostPort))
		got, err := fetch(t, "", addr)
		if err != nil || got != "hello from web" {
			t.Errorf("host → %s: %q, %v", addr, got, err)
		}
	}

	if err := n.m.Teardown(ctx(t), p.a); err != nil {
		t.Fatal(err)
	}
	if chainExists(t, dnat) {
		t.Errorf("portmap chain %s left after Teardown", dnat)
	}
}

// TestSetupFailureUndoes: a plugin chained after bridge fails; Setup
// returns a classified error naming sandbox and network and leaves no
// lease and no eth0.
func TestSetupFailureUndoes(t *testing.T) {
	n := newTestNet(t)
	failDir := t.TempDir()
	script := "#!/bin/sh\n" +
		"# A CNI plugin that fails every ADD (code 11: try again later).\n" +
		"if [ \"$CNI_COMMAND\" = ADD ]; then\n" +
		"  echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"injected failure\"}'\n" +
		"  exit 1\n" +
		"fi\n"
	if err := os.WriteFile(filepath.Join(failDir, "berth-test-fail"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{ConfDir: n.confDir, BinDirs: []string{failDir, n.binDir}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	n.writeConf(t, "10-test.conflist", withPlugin(t, n.conflist(t), map[string]any{"type": "berth-test-fail"}))

	a := n.attachment(t, "doomed")
	_, err = m.Setup(ctx(t), a)
	if err == nil {
		t.Fatal("Setup succeeded")
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("error class: %v, want Unavailable", err)
	}
	for _, want := range []string{a.SandboxID, n.name, "injected failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(n.dataDir, n.name))
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			t.Errorf("lease %s left after failed Setup", e.Name())
		}
	}
	err = inNetNS(t, a.NetNS, func() error {
		_, err := netlink.LinkByName("eth0")
		return err
	})
	if err == nil {
		t.Error("eth0 left in the namespace after failed Setup")
	}
	if chainExists(t, utils.FormatChainName(n.name, a.SandboxID)) {
		t.Error("masquerade chain left after failed Setup")
	}
}

// TestReadyAndUpdatePodCIDR: an empty directory is not ready and says
// why; UpdatePodCIDR writes berth's network and the node is ready without
// a new Manager; a pod gets an address from that CIDR; someone else's
// config is never touched.
func TestReadyAndUpdatePodCIDR(t *testing.T) {
	n := newTestNet(t)
	err := n.m.Ready()
	if err == nil || !errors.Is(err, errdefs.ErrFailedPrecondition) ||
		err.Error() != "no CNI network config found in "+n.confDir {
		t.Fatalf("Ready on an empty dir: %v", err)
	}
	for _, bad := range []string{"bogus", "10.0.0.0/33", "10.0.0.1", "10.1.0.0/16,10.2.0.0/16", "10.0.0.0/31"} {
		if err := n.m.UpdatePodCIDR(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("UpdatePodCIDR(%q): %v, want InvalidArgument", bad, err)
		}
	}
	if err := n.m.Ready(); err == nil {
		t.Fatal("a rejected CIDR made the node ready")
	}
	if err := n.m.UpdatePodCIDR(""); err != nil {
		t.Errorf("UpdatePodCIDR(\"\"): %v", err)
	}

	if err := n.m.UpdatePodCIDR(n.subnet.String()); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Ready(); err != nil {
		t.Fatalf("Ready after UpdatePodCIDR: %v", err)
	}
	written := filepath.Join(n.confDir, cniplugins.ConflistName)
	p := n.setup(t, "pod")
	if !n.subnet.Contains(net.ParseIP(p.ips[0])) {
		t.Errorf("pod IP %s not in %s", p.ips[0], n.subnet)
	}

	// A new CIDR rewrites berth's own file.
	other := freeSubnet(t)
	if err := n.m.UpdatePodCIDR(other.String()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(written)
	if err != nil || !strings.Contains(string(data), other.String()) {
		t.Fatalf("%s not rewritten for %s: %v\n%s", written, other, err, data)
	}

	// Someone else's config: neither file changes any more.
	foreign := filepath.Join(n.confDir, "05-other.conflist")
	foreignData := withPlugin(t, n.conflist(t), map[string]any{"type": "loopback"})
	if err := os.WriteFile(foreign, foreignData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.m.UpdatePodCIDR(n.subnet.String()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(written); string(got) != string(data) {
		t.Error("UpdatePodCIDR rewrote its file although another config is present")
	}
	if got, _ := os.ReadFile(foreign); string(got) != string(foreignData) {
		t.Error("UpdatePodCIDR changed someone else's config")
	}
}

func TestReadyReasons(t *testing.T) {
	dir := t.TempDir()
	binDir := t.TempDir()
	m, err := New(Config{ConfDir: filepath.Join(dir, "missing"), BinDirs: []string{binDir}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err == nil || !strings.Contains(err.Error(), "no CNI network config found in "+filepath.Join(dir, "missing")) {
		t.Errorf("missing dir: %v", err)
	}
	// Nothing attached and no network: Teardown has nothing to do.
	if err := m.Teardown(ctx(t), Attachment{SandboxID: "never-attached", NetNS: "/nonexistent"}); err != nil {
		t.Errorf("Teardown without network or cache: %v", err)
	}

	m, err = New(Config{ConfDir: dir, BinDirs: []string{binDir}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "00-bad.conflist")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("only an invalid config: %v", err)
	}
	// A valid config after the bad one is used; its plugins are missing.
	if err := os.WriteFile(filepath.Join(dir, "10-berth.conflist"), cniplugins.DefaultConflist(), 0o644); err != nil {
		t.Fatal(err)
	}
	err = m.Ready()
	if err == nil || !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), `CNI plugin "bridge"`) {
		t.Errorf("missing plugins: %v", err)
	}
	_, err = m.Setup(ctx(t), Attachment{SandboxID: "x", NetNS: "/nonexistent"})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Setup on a network that is not ready: %v", err)
	}
	// Installing the plugins makes the node ready.
	for _, p := range pluginNames {
		if err := os.WriteFile(filepath.Join(binDir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Ready(); err != nil {
		t.Errorf("Ready with plugins installed: %v", err)
	}
	_, err = m.Setup(ctx(t), Attachment{SandboxID: "x", NetNS: bad})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "not a network namespace") {
		t.Errorf("Setup with a plain file as netns: %v", err)
	}
	// A single-plugin .conf sorting first takes over.
	conf := `{"cniVersion":"1.0.0","name":"single","type":"loopback"}`
	if err := os.WriteFile(filepath.Join(dir, "01-single.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	list, _, err := m.load()
	if err != nil || list.Name != "single" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "loopback" {
		t.Errorf("single .conf: %+v, %v", list, err)
	}
}

func chainExists(t *testing.T, chain string) bool {
	t.Helper()
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := ipt.ChainExists("nat", chain)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// gatewayIP is the bridge's address, the pods' gateway.
func gatewayIP(t *testing.T, n *testNet) string {
	t.Helper()
	br, err := netlink.LinkByName(n.bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("bridge %s addresses: %v, %v", n.bridge, addrs, err)
	}
	return addrs[0].IP.String()
}

func unmount(path string) error {
	return unix.Unmount(path, unix.MNT_DETACH)
}
