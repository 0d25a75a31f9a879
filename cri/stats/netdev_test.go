package stats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
)

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     740      10    0    0    0     0          0         0      740      10    0    0    0     0       0          0
  eth0:  137515   11292    2    3    0     0          0         0  1316937   12972    4    5    0     0       0          0
veryveryverylong:1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	got, err := ParseNetDev(strings.NewReader(netDev))
	if err != nil {
		t.Fatal(err)
	}
	want := []Interface{
		{Name: "lo", RxBytes: 740, RxPackets: 10, TxBytes: 740, TxPackets: 10},
		{Name: "eth0", RxBytes: 137515, RxPackets: 11292, RxErrors: 2, RxDropped: 3, TxBytes: 1316937, TxPackets: 12972, TxErrors: 4, TxDropped: 5},
		{Name: "veryveryverylong", RxBytes: 1, RxPackets: 2, RxErrors: 3, RxDropped: 4, TxBytes: 5, TxPackets: 6, TxErrors: 7, TxDropped: 8},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d interfaces, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("interface %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseNetDevErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no colon":     "h\nh\neth0 1 2 3\n",
		"short":        "h\nh\neth0: 1 2 3\n",
		"not a number": "h\nh\neth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
	} {
		if _, err := ParseNetDev(strings.NewReader(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// fakeProc makes <root>/<pid>/net/dev and <root>/<pid>/ns/net, the latter
// a link to ns (as the kernel's magic link resolves to the namespace).
func fakeProc(t *testing.T, root, pid, ns string) {
	t.Helper()
	writeTree(t, root, map[string]string{pid + "/net/dev": netDev})
	if err := os.MkdirAll(filepath.Join(root, pid, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ns, filepath.Join(root, pid, "ns", "net")); err != nil {
		t.Fatal(err)
	}
}

func TestNetwork(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	podNS, otherNS := filepath.Join(dir, "pod-ns"), filepath.Join(dir, "other-ns")
	writeTree(t, dir, map[string]string{"pod-ns": "", "other-ns": ""})
	fakeProc(t, proc, "100", podNS)
	fakeProc(t, proc, "200", otherNS)

	ifaces, err := Network(proc, 100, podNS)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "eth0,veryveryverylong" {
		t.Errorf("interfaces %v, want eth0 and veryveryverylong (no lo)", names)
	}
	if _, err := Network(proc, 100, ""); err != nil {
		t.Errorf("without a namespace to check: %v", err)
	}
	// A recycled pid lives in another namespace.
	if _, err := Network(proc, 200, podNS); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pid in another namespace: err = %v, want NotFound", err)
	}
	if _, err := Network(proc, 300, podNS); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("gone pid: err = %v, want NotFound", err)
	}
	if _, err := Network(proc, 300, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("gone pid, no namespace: err = %v, want NotFound", err)
	}
}
