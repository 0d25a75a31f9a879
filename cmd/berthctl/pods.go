package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/berth-project/berth/pkg/api"
	"github.com/berth-project/berth/pkg/manifest"
	"github.com/berth-project/berth/pkg/source"
)

// getAPI fetches path from the agent's API on its unix socket.
func getAPI(socket, path string) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := client.Get("http://berth" + path)
	if err != nil {
		return nil, fmt.Errorf("agent API at %s: %w (is berthd running with its agent?)", socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent API %s: %s", path, resp.Status)
	}
	return body, nil
}

func podsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pods",
		Short: "the agent's pods and their status, as kubectl get pods shows them",
		Args:  cobra.NoArgs,
	}
	output := outputFlag(cmd, "wide", "json", "yaml")
	cmd.RunE = func(*cobra.Command, []string) error { return listPods(g.apiSocket, *output) }
	return cmd
}

// printRaw prints an API answer as JSON or YAML; done is false for the
// other formats, which the caller prints.
func printRaw(body []byte, output string) (done bool, err error) {
	switch output {
	case "json":
		_, err := os.Stdout.Write(body)
		return true, err
	case "yaml":
		out, err := yaml.JSONToYAML(body)
		if err != nil {
			return true, err
		}
		_, err = os.Stdout.Write(out)
		return true, err
	}
	return false, nil
}

// listPods prints the pods as kubectl get pods does.
func listPods(socket, output string) error {
	body, err := getAPI(socket, "/pods")
	if err != nil {
		return err
	}
	if done, err := printRaw(body, output); done {
		return err
	}
	var list v1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("agent API /pods: %w", err)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	header := "NAMESPACE\tNAME\tREADY\tSTATUS\tRESTARTS\tAGE"
	if output == "wide" {
		header += "\tIP\tUID"
	}
	fmt.Fprintln(tw, header)
	for _, p := range list.Items {
		ready, total := readyCount(&p)
		reason, restarts := podReason(&p)
		age := "-"
		if p.Status.StartTime != nil {
			age = time.Since(p.Status.StartTime.Time).Round(time.Second).String()
		}
		line := fmt.Sprintf("%s\t%s\t%d/%d\t%s\t%d\t%s", p.Namespace, p.Name, ready, total, reason, restarts, age)
		if output == "wide" {
			line += fmt.Sprintf("\t%s\t%s", orDash(p.Status.PodIP), p.UID)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// readyCount is the READY column: ready containers of the app containers
// and sidecars, as kubectl counts them.
func readyCount(p *v1.Pod) (ready, total int) {
	total = len(p.Spec.Containers)
	sidecars := map[string]bool{}
	for i := range p.Spec.InitContainers {
		if isSidecar(&p.Spec.InitContainers[i]) {
			sidecars[p.Spec.InitContainers[i].Name] = true
			total++
		}
	}
	for _, c := range p.Status.InitContainerStatuses {
		if sidecars[c.Name] && c.Ready {
			ready++
		}
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready {
			ready++
		}
	}
	return ready, total
}

// podReason is the STATUS column and the restarts, worked out as kubectl
// get pods does: Init:n/m while initialising, else the reason of the last
// container that has one (Completed, Error, CrashLoopBackOff…), else the
// phase; Terminating while the pod is being removed.
func podReason(p *v1.Pod) (string, int32) {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	var restarts int32
	initializing := false
inits:
	for i, c := range p.Status.InitContainerStatuses {
		restarts += c.RestartCount
		sidecar := i < len(p.Spec.InitContainers) && isSidecar(&p.Spec.InitContainers[i])
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case sidecar && c.Started != nil && *c.Started:
			continue
		case c.State.Terminated != nil:
			reason = "Init:" + terminatedReason(c.State.Terminated)
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break inits
	}
	if !initializing {
		running := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := p.Status.ContainerStatuses[i]
			restarts += c.RestartCount
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil:
				reason = terminatedReason(c.State.Terminated)
			case c.Ready && c.State.Running != nil:
				running = true
			}
		}
		if reason == "Completed" && running {
			reason = "Running"
		}
	}
	if p.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	return reason, restarts
}

func terminatedReason(t *v1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func manifestsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifests",
		Short: "each manifest file: its pods, or why it was refused",
		Args:  cobra.NoArgs,
	}
	output := outputFlag(cmd, "json", "yaml")
	cmd.RunE = func(*cobra.Command, []string) error { return listManifests(g.apiSocket, *output) }
	return cmd
}

// listManifests prints each manifest file's outcome.
func listManifests(socket, output string) error {
	body, err := getAPI(socket, "/manifests")
	if err != nil {
		return err
	}
	if done, err := printRaw(body, output); done {
		return err
	}
	var ms []api.Manifest
	if err := json.Unmarshal(body, &ms); err != nil {
		return fmt.Errorf("agent API /manifests: %w", err)
	}
	for _, m := range ms {
		var names []string
		for _, p := range m.Pods {
			names = append(names, p.Namespace+"/"+p.Name)
		}
		switch {
		case m.Error != "" && len(names) > 0:
			// Invalid now, still running the version before.
			fmt.Printf("%s: INVALID, still running %s\n  %s\n", m.File, strings.Join(names, ", "), strings.ReplaceAll(m.Error, "\n", "\n  "))
		case m.Error != "":
			fmt.Printf("%s: INVALID\n  %s\n", m.File, strings.ReplaceAll(m.Error, "\n", "\n  "))
		default:
			fmt.Printf("%s: %s\n", m.File, strings.Join(names, ", "))
		}
		for _, r := range m.RolledBack {
			fmt.Printf("  ROLLED BACK %s\n", r)
		}
	}
	return nil
}

func statusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "the node: versions, runtime and network, pressure, pods by phase, the upstream's connection",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := showNode(g.apiSocket); err != nil {
				return err
			}
			g.withCRI(func(ctx context.Context, conn *grpc.ClientConn) error {
				showRuntime(ctx, conn)
				return nil
			})
			return showStatus(g.apiSocket)
		},
	}
}

// showNode prints the node's name, berth's version and its pressure.
func showNode(socket string) error {
	body, err := getAPI(socket, "/node")
	if err != nil {
		return err
	}
	var node struct {
		Name, Version                string
		MemoryPressure, DiskPressure bool
		ThresholdsMet                []string
	}
	if err := json.Unmarshal(body, &node); err != nil {
		return fmt.Errorf("agent API /node: %w", err)
	}
	fmt.Printf("node: %s (berth %s)\n", node.Name, node.Version)
	var pressure []string
	if node.MemoryPressure {
		pressure = append(pressure, "MemoryPressure")
	}
	if node.DiskPressure {
		pressure = append(pressure, "DiskPressure")
	}
	fmt.Printf("pressure: %s", or(strings.Join(pressure, ", "), "none"))
	if len(node.ThresholdsMet) > 0 {
		fmt.Printf(" (%s)", strings.Join(node.ThresholdsMet, ", "))
	}
	fmt.Println()
	return nil
}

// showRuntime prints the CRI runtime's version and conditions, or why it
// cannot be asked.
func showRuntime(ctx context.Context, conn *grpc.ClientConn) {
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		fmt.Printf("runtime: not answering: %s\n", status.Convert(err).Message())
		return
	}
	fmt.Printf("runtime: %s %s (CRI %s)", v.GetRuntimeName(), v.GetRuntimeVersion(), v.GetRuntimeApiVersion())
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		fmt.Printf(", status: %s\n", status.Convert(err).Message())
		return
	}
	var conds []string
	for _, c := range st.GetStatus().GetConditions() {
		s := fmt.Sprintf("%s=%v", c.GetType(), c.GetStatus())
		if !c.GetStatus() && c.GetMessage() != "" {
			s += " (" + c.GetReason() + ": " + c.GetMessage() + ")"
		}
		conds = append(conds, s)
	}
	fmt.Printf(", %s\n", strings.Join(conds, ", "))
}

// showStatus prints the pods by phase and the upstream's state.
func showStatus(socket string) error {
	body, err := getAPI(socket, "/pods")
	if err != nil {
		return err
	}
	var list v1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("agent API /pods: %w", err)
	}
	phases := map[v1.PodPhase]int{}
	for _, p := range list.Items {
		phases[p.Status.Phase]++
	}
	var counts []string
	for _, ph := range []v1.PodPhase{v1.PodPending, v1.PodRunning, v1.PodSucceeded, v1.PodFailed, v1.PodUnknown, ""} {
		if n := phases[ph]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, or(string(ph), "no phase")))
		}
	}
	fmt.Printf("pods: %d (%s)\n", len(list.Items), or(strings.Join(counts, ", "), "none"))
	body, err = getAPI(socket, "/upstream")
	if err != nil {
		return err
	}
	var up source.UpstreamStatus
	if err := json.Unmarshal(body, &up); err != nil {
		return fmt.Errorf("agent API /upstream: %w", err)
	}
	if up.Plugin == "" {
		fmt.Println("upstream: none (static pods only)")
		return nil
	}
	fmt.Printf("upstream: %s, %s", up.Plugin, up.Connection)
	if !up.Since.IsZero() {
		fmt.Printf(" since %s", up.Since.Local().Format(time.RFC3339))
	}
	fmt.Println()
	if up.Error != "" {
		fmt.Printf("  %s\n", strings.ReplaceAll(up.Error, "\n", "\n  "))
	}
	switch {
	case up.FromJournal:
		fmt.Printf("  running %d pods from the journal (nothing heard from the upstream since berthd started)\n", len(up.Pods))
	case !up.Complete:
		fmt.Println("  its pods are not known yet: pods it ran before are left alone")
	default:
		fmt.Printf("  %d pods, last synced %s\n", len(up.Pods), up.LastSync.Local().Format(time.RFC3339))
	}
	for _, r := range up.Refused {
		fmt.Printf("  REFUSED %s\n", r)
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func validateCommand() *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "validate [--node-name NAME] FILE...",
		Short: "check pod manifests as the agent would, without running them",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(_ *cobra.Command, files []string) error { return validate(node, files) },
	}
	cmd.Flags().StringVar(&node, "node-name", "", "node name for static pod names (default: the host name)")
	return cmd
}

// validate checks manifest files as the agent would read them.
func validate(node string, files []string) error {
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		node = strings.ToLower(h)
	}
	bad := 0
	for _, path := range files {
		f := manifest.ReadFile(path, node)
		if f.Err != nil {
			bad++
			fmt.Printf("%s: INVALID\n  %s\n", path, strings.ReplaceAll(f.Err.Error(), "\n", "\n  "))
			continue
		}
		for _, p := range f.Pods {
			fmt.Printf("%s: ok: pod %s/%s (%d containers)\n", path, p.Namespace, p.Name, len(p.Spec.Containers))
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files invalid", bad, len(files))
	}
	return nil
}
