package streaming

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/cri/netns"
)

// serveOnce answers one connection with what it read, once the client
// half-closed, so the test sees both directions and the half-close.
func serveOnce(t *testing.T, l net.Listener) {
	t.Helper()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		data, _ := io.ReadAll(c)
		c.Write(append([]byte("got: "), data...))
	}()
}

// forward runs PortForward with one end of a connected pair as the
// client's stream and returns what the other end reads after sending msg
// and half-closing, as a client whose request is complete does.
func forward(t *testing.T, netnsPath string, port int, msg string) string {
	t.Helper()
	client, stream := connectedPair(t)
	defer client.Close()
	done := make(chan error, 1)
	go func() {
		err := PortForward(context.Background(), netnsPath, int32(port), stream)
		stream.Close() // as the streaming library does when it returns
		done <- err
	}()
	if _, err := client.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	client.CloseWrite()
	answer, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	return string(answer)
}

// connectedPair is two ends of a loopback TCP connection.
func connectedPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func TestPortForwardOnTheHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serveOnce(t, l)
	port := l.Addr().(*net.TCPAddr).Port
	if got := forward(t, "", port, "request"); got != "got: request" {
		t.Errorf("answer %q: the request's end must reach the server and the answer come back", got)
	}
}

func TestPortForwardRefusesBadPorts(t *testing.T) {
	for _, port := range []int32{0, -1, 65536} {
		if err := PortForward(context.Background(), "", port, nil); err == nil {
			t.Errorf("port %d accepted", port)
		}
	}
}

func TestPortForwardInANetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 || testing.Short() {
		t.Skip("needs root to make a network namespace")
	}
	path, err := netns.New(t.TempDir(), "pf")
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Remove(path)
	// A listener made inside the namespace, on its loopback only: the
	// host's 127.0.0.1 cannot reach it.
	var l net.Listener
	err = ns.WithNetNSPath(path, func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err == nil {
			l, err = net.Listen("tcp", "127.0.0.1:0")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	serveOnce(t, l)
	port := l.Addr().(*net.TCPAddr).Port
	if got := forward(t, path, port, "into the pod"); got != "got: into the pod" {
		t.Errorf("answer %q", got)
	}
	_, stream := connectedPair(t)
	defer stream.Close()
	if err := PortForward(context.Background(), filepath.Join(t.TempDir(), "missing"), int32(port), stream); err == nil {
		t.Error("forwarded into a namespace that does not exist")
	}
}
