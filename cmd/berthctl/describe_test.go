package main

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDescribePod(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default", UID: "u1",
			Annotations: map[string]string{"kubernetes.io/config.source": "file"}},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "main", Image: "busybox",
				LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}},
					TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}}},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}},
		},
		Status: v1.PodStatus{Phase: v1.PodRunning, PodIP: "10.0.0.5", QOSClass: v1.PodQOSBestEffort,
			Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}},
			ContainerStatuses: []v1.ContainerStatus{{Name: "main", ContainerID: "berth://c2", Ready: true, RestartCount: 1,
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}}}}},
	}
	events := []v1.Event{
		{InvolvedObject: v1.ObjectReference{UID: "u1"}, Type: "Warning", Reason: "Unhealthy", Message: "Liveness probe failed",
			Count: 3, FirstTimestamp: metav1.NewTime(now.Add(-time.Minute)), LastTimestamp: metav1.NewTime(now.Add(-10 * time.Second)),
			Source: v1.EventSource{Component: "berth"}},
		{InvolvedObject: v1.ObjectReference{UID: "other"}, Reason: "NotMine"},
	}
	var out strings.Builder
	describePod(&out, p, events, now)
	text := out.String()
	for _, want := range []string{"Name:", "web-n1", "Status:", "Running", "IP:", "10.0.0.5", "Container ID:", "berth://c2",
		"Last State:", "Exit Code:", "137", "Restart Count:", "Liveness:", "exec true delay=0s timeout=1s period=10s #success=1 #failure=3",
		"Ready", "True", "data:", "EmptyDir", "Unhealthy", "10s (x3 over 50s)", "Liveness probe failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("describe has no %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "NotMine") {
		t.Errorf("another pod's event described:\n%s", text)
	}
}
