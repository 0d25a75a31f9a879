package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
)

func describeCommand(g *globals) *cobra.Command {
	describe := &cobra.Command{Use: "describe", Short: "show a pod in detail, as kubectl describe does"}
	describe.AddCommand(&cobra.Command{
		Use:   "pod NAME",
		Short: "a pod's conditions, containers (state, last state, restarts, probes), volumes and recent events",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			body, err := getAPI(g.apiSocket, "/pods")
			if err != nil {
				return err
			}
			var list v1.PodList
			if err := json.Unmarshal(body, &list); err != nil {
				return fmt.Errorf("agent API /pods: %w", err)
			}
			i := slices.IndexFunc(list.Items, func(p v1.Pod) bool { return p.Name == args[0] })
			if i < 0 {
				return fmt.Errorf("pod %q not found (berthctl pods lists them)", args[0])
			}
			body, err = getAPI(g.apiSocket, "/events")
			if err != nil {
				return err
			}
			var events v1.EventList
			if err := json.Unmarshal(body, &events); err != nil {
				return fmt.Errorf("agent API /events: %w", err)
			}
			describePod(os.Stdout, &list.Items[i], events.Items, time.Now())
			return nil
		},
	})
	return describe
}

// describePod prints a pod in kubectl describe's shape.
func describePod(out io.Writer, p *v1.Pod, events []v1.Event, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "Name:\t%s\n", p.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", p.Namespace)
	fmt.Fprintf(w, "UID:\t%s\n", p.UID)
	fmt.Fprintf(w, "Source:\t%s\n", orDash(p.Annotations["kubernetes.io/config.source"]))
	if p.Status.StartTime != nil {
		fmt.Fprintf(w, "Start Time:\t%s\n", p.Status.StartTime.Format(time.RFC1123Z))
	}
	fmt.Fprintf(w, "Status:\t%s\n", p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(w, "Reason:\t%s\n", p.Status.Reason)
	}
	if p.Status.Message != "" {
		fmt.Fprintf(w, "Message:\t%s\n", p.Status.Message)
	}
	fmt.Fprintf(w, "IP:\t%s\n", orDash(p.Status.PodIP))
	fmt.Fprintf(w, "QoS Class:\t%s\n", orDash(string(p.Status.QOSClass)))
	section := func(title string, specs []v1.Container, statuses []v1.ContainerStatus) {
		if len(specs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, c := range specs {
			fmt.Fprintf(w, "  %s:\n", c.Name)
			fmt.Fprintf(w, "    Image:\t%s\n", c.Image)
			i := slices.IndexFunc(statuses, func(s v1.ContainerStatus) bool { return s.Name == c.Name })
			if i >= 0 {
				s := statuses[i]
				fmt.Fprintf(w, "    Container ID:\t%s\n", orDash(s.ContainerID))
				describeState(w, "State", s.State)
				if s.LastTerminationState != (v1.ContainerState{}) {
					describeState(w, "Last State", s.LastTerminationState)
				}
				fmt.Fprintf(w, "    Ready:\t%t\n", s.Ready)
				fmt.Fprintf(w, "    Restart Count:\t%d\n", s.RestartCount)
			}
			for _, pr := range []struct {
				name  string
				probe *v1.Probe
			}{{"Startup", c.StartupProbe}, {"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}} {
				if pr.probe != nil {
					fmt.Fprintf(w, "    %s:\t%s\n", pr.name, probeSummary(pr.probe))
				}
			}
		}
	}
	section("Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	section("Containers", p.Spec.Containers, p.Status.ContainerStatuses)
	if len(p.Status.Conditions) > 0 {
		fmt.Fprintf(w, "Conditions:\n  Type\tStatus\n")
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\n", c.Type, c.Status)
		}
	}
	if len(p.Spec.Volumes) > 0 {
		fmt.Fprintf(w, "Volumes:\n")
		for _, v := range p.Spec.Volumes {
			fmt.Fprintf(w, "  %s:\t%s\n", v.Name, volumeKind(v))
		}
	}
	var mine []v1.Event
	for _, e := range events {
		if e.InvolvedObject.UID == p.UID {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintf(w, "Events:\t<none>\n")
		return
	}
	fmt.Fprintf(w, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------\n")
	for _, e := range mine {
		age := now.Sub(e.LastTimestamp.Time).Round(time.Second)
		if e.Count > 1 {
			fmt.Fprintf(w, "  %s\t%s\t%s (x%d over %s)\t%s\t%s\n", e.Type, e.Reason, age, e.Count,
				e.LastTimestamp.Sub(e.FirstTimestamp.Time).Round(time.Second), e.Source.Component, e.Message)
			continue
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, age, e.Source.Component, e.Message)
	}
}

func describeState(w io.Writer, title string, s v1.ContainerState) {
	switch {
	case s.Running != nil:
		fmt.Fprintf(w, "    %s:\tRunning\n      Started:\t%s\n", title, s.Running.StartedAt.Format(time.RFC1123Z))
	case s.Waiting != nil:
		fmt.Fprintf(w, "    %s:\tWaiting\n      Reason:\t%s\n", title, s.Waiting.Reason)
		if s.Waiting.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", s.Waiting.Message)
		}
	case s.Terminated != nil:
		t := s.Terminated
		fmt.Fprintf(w, "    %s:\tTerminated\n      Reason:\t%s\n      Exit Code:\t%d\n      Started:\t%s\n      Finished:\t%s\n",
			title, t.Reason, t.ExitCode, t.StartedAt.Format(time.RFC1123Z), t.FinishedAt.Format(time.RFC1123Z))
		if t.Message != "" {
			fmt.Fprintf(w, "      Message:\t%s\n", strings.ReplaceAll(strings.TrimSpace(t.Message), "\n", "\n        "))
		}
	}
}

// probeSummary is kubectl describe's one-line probe: its action and
// timings.
func probeSummary(p *v1.Probe) string {
	var action string
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		action = "exec " + strings.Join(h.Exec.Command, " ")
	case h.HTTPGet != nil:
		action = fmt.Sprintf("http-get %s://:%s%s", strings.ToLower(string(orScheme(h.HTTPGet.Scheme))), h.HTTPGet.Port.String(), h.HTTPGet.Path)
	case h.TCPSocket != nil:
		action = "tcp-socket :" + h.TCPSocket.Port.String()
	case h.GRPC != nil:
		action = fmt.Sprintf("grpc :%d", h.GRPC.Port)
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		action, p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

func orScheme(s v1.URIScheme) v1.URIScheme {
	if s == "" {
		return v1.URISchemeHTTP
	}
	return s
}

// volumeKind names a volume's source as kubectl describe heads it.
func volumeKind(v v1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "EmptyDir (a temporary directory that shares a pod's lifetime)"
	case v.HostPath != nil:
		return "HostPath " + v.HostPath.Path
	case v.ConfigMap != nil:
		return "ConfigMap " + v.ConfigMap.Name
	case v.Secret != nil:
		return "Secret " + v.Secret.SecretName
	case v.Projected != nil:
		return "Projected"
	case v.DownwardAPI != nil:
		return "DownwardAPI"
	case v.Image != nil:
		return "Image " + v.Image.Reference
	}
	return "other"
}
