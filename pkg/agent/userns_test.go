package agent

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSandboxUserNamespace(t *testing.T) {
	no := false
	own := &v1.Pod{Spec: v1.PodSpec{HostUsers: &no}}
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		recorded string
		hostID   uint32 // 0: no user namespace
		err      string
	}{
		{name: "host users", pod: &v1.Pod{}, recorded: ""},
		{name: "host users, stray annotation", pod: &v1.Pod{}, recorded: "65536"},
		{name: "recorded block", pod: own, recorded: "131072", hostID: 131072},
		{name: "not recorded", pod: own, recorded: "", err: `sandbox sb1 records no user namespace (annotation berth.io/userns-host-id="")`},
		{name: "garbled", pod: own, recorded: "-1", err: `annotation berth.io/userns-host-id="-1"`},
		{name: "too large", pod: own, recorded: "4294967296", err: `"4294967296"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			us, err := sandboxUserNamespace(tc.pod, "sb1", tc.recorded)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.hostID == 0 {
				if us != nil {
					t.Fatalf("user namespace %v for a pod with the host's users", us)
				}
				return
			}
			for _, m := range [][]*runtimeapi.IDMapping{us.Uids, us.Gids} {
				if len(m) != 1 || m[0].ContainerId != 0 || m[0].HostId != tc.hostID || m[0].Length != 65536 {
					t.Fatalf("mapping %v, want 0 -> %d for 65536", m, tc.hostID)
				}
			}
		})
	}
}
