package agent

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerSecurityMergesPodAndContainer(t *testing.T) {
	user, group, other := int64(1000), int64(2000), int64(3000)
	no := false
	pod := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsUser: &user, RunAsGroup: &group, FSGroup: &other}}}
	c := &v1.Container{SecurityContext: &v1.SecurityContext{RunAsUser: &other, AllowPrivilegeEscalation: &no,
		Capabilities: &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}}}}
	sc := containerSecurity(pod, c)
	if sc.GetRunAsUser().GetValue() != other || sc.GetRunAsGroup().GetValue() != group || !sc.GetNoNewPrivs() {
		t.Errorf("user %v group %v no_new_privs %v", sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetNoNewPrivs())
	}
	if got := sc.GetSupplementalGroups(); len(got) != 1 || got[0] != other {
		t.Errorf("supplemental groups %v, want the fsGroup", got)
	}
	if caps := sc.GetCapabilities(); len(caps.GetAddCapabilities()) != 1 || caps.GetDropCapabilities()[0] != "ALL" {
		t.Errorf("capabilities %v", caps)
	}
	// A group without a user is passed on: the runtime refuses it with an
	// error naming the field, instead of the agent dropping it unseen.
	onlyGroup := &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{RunAsGroup: &group}}}
	if sc := containerSecurity(onlyGroup, &v1.Container{}); sc.GetRunAsUser() != nil || sc.GetRunAsGroup().GetValue() != group {
		t.Errorf("runAsGroup alone: user %v group %v", sc.GetRunAsUser(), sc.GetRunAsGroup())
	}
}

func TestStopSignal(t *testing.T) {
	quit := v1.SIGQUIT
	for _, tt := range []struct {
		c    v1.Container
		want runtimeapi.Signal
	}{
		{v1.Container{}, runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT},
		{v1.Container{Lifecycle: &v1.Lifecycle{StopSignal: &quit}}, runtimeapi.Signal_SIGNAL_SIGQUIT},
	} {
		if got := stopSignal(&tt.c); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.c.Lifecycle, got, tt.want)
		}
	}
}
