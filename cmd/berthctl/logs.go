package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/podlogs"
)

func logsCommand(g *globals) *cobra.Command {
	var container string
	var follow, previous bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER] [-f] [--previous] [--tail N]",
		Short: "a container's log, as kubectl logs prints it; -f follows it across rotations",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return g.withCRI(func(ctx context.Context, conn *grpc.ClientConn) error {
				path, err := logPath(ctx, g.apiSocket, runtimeapi.NewRuntimeServiceClient(conn), args[0], container, previous)
				if err != nil {
					return err
				}
				return printLog(path, tail, follow)
			})
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "the container (default: the pod's only one)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "go on printing what is written, across rotations")
	cmd.Flags().BoolVarP(&previous, "previous", "p", false, "the container's previous (terminated) instance")
	cmd.Flags().IntVar(&tail, "tail", -1, "the last N lines only (-1: all)")
	return cmd
}

// logPath finds the log file of a pod's container through the agent's
// pods and the CRI.
func logPath(ctx context.Context, apiSocket string, rt runtimeapi.RuntimeServiceClient, pod, container string, previous bool) (string, error) {
	body, err := getAPI(apiSocket, "/pods")
	if err != nil {
		return "", err
	}
	var list v1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("agent API /pods: %w", err)
	}
	i := slices.IndexFunc(list.Items, func(p v1.Pod) bool { return p.Name == pod })
	if i < 0 {
		return "", fmt.Errorf("pod %q not found (berthctl pods lists them)", pod)
	}
	p := list.Items[i]
	statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
	if container == "" {
		if len(p.Spec.Containers) != 1 {
			var names []string
			for _, c := range p.Spec.Containers {
				names = append(names, c.Name)
			}
			return "", fmt.Errorf("pod %s has containers %s: name one with -c", pod, strings.Join(names, ", "))
		}
		container = p.Spec.Containers[0].Name
	}
	j := slices.IndexFunc(statuses, func(s v1.ContainerStatus) bool { return s.Name == container })
	if j < 0 {
		return "", fmt.Errorf("pod %s has no container %q", pod, container)
	}
	id := statuses[j].ContainerID
	if previous {
		t := statuses[j].LastTerminationState.Terminated
		if t == nil {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
		}
		id = t.ContainerID
	}
	_, id, _ = strings.Cut(id, "://")
	if id == "" {
		return "", fmt.Errorf("container %q in pod %q has not started", container, pod)
	}
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	if st.GetStatus().GetLogPath() == "" {
		return "", fmt.Errorf("container %s has no log", id)
	}
	return st.GetStatus().GetLogPath(), nil
}

// printLog prints the log's lines as the container wrote them.
func printLog(path string, tail int, follow bool) error {
	r, err := podlogs.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	records, err := r.Tail(tail)
	if err != nil {
		return err
	}
	for _, rec := range records {
		printRecord(rec)
	}
	if !follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return r.Follow(ctx, 100*time.Millisecond, nil, printRecord)
}

func printRecord(r podlogs.Record) {
	out := os.Stdout
	if r.Stream == "stderr" {
		out = os.Stderr
	}
	if r.Partial {
		fmt.Fprint(out, r.Text)
		return
	}
	fmt.Fprintln(out, r.Text)
}
