package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podLabels are the labels that tie a CRI object to its pod.
func podLabels(pod *v1.Pod) map[string]string {
	return map[string]string{
		labelPodName:      pod.Name,
		labelPodNamespace: pod.Namespace,
		labelPodUID:       string(pod.UID),
		labelManaged:      "true",
	}
}

// podLogDir is kubelet's /var/log/pods/<namespace>_<name>_<uid>.
func podLogDir(root string, pod *v1.Pod) string {
	return podLogDirOf(root, pod.Namespace, pod.Name, pod.UID)
}

func podLogDirOf(root, namespace, name string, uid types.UID) string {
	return filepath.Join(root, namespace+"_"+name+"_"+string(uid))
}

// sandboxConfig is the CRI sandbox of a pod.
func (w *worker) sandboxConfig(pod *v1.Pod, attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	labels := podLabels(pod)
	for k, v := range pod.Labels {
		if _, ours := labels[k]; !ours {
			labels[k] = v
		}
	}
	dns, err := dnsConfig(pod, nodeDNS{w.m.cfg.ResolvConf, w.m.cfg.ClusterDNS, w.m.cfg.ClusterDomain})
	if err != nil {
		return nil, err
	}
	// A copy: the agent adds its own, and the desired pod is shared.
	annotations := maps.Clone(pod.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		Hostname:     podHostname(pod),
		LogDirectory: podLogDir(w.m.cfg.LogDir, pod),
		DnsConfig:    dns,
		PortMappings: portMappings(pod),
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    w.m.cgroupParent(pod),
			SecurityContext: sandboxSecurity(pod),
			Sysctls:         podSysctls(pod),
		},
	}, nil
}

// podHostname: spec.hostname, else the pod's name, cut to a DNS label.
func podHostname(pod *v1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func portMappings(pod *v1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case v1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case v1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			out = append(out, &runtimeapi.PortMapping{
				Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP,
			})
		}
	}
	return out
}

func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	mode := func(host bool, otherwise runtimeapi.NamespaceMode) runtimeapi.NamespaceMode {
		if host {
			return runtimeapi.NamespaceMode_NODE
		}
		return otherwise
	}
	pid := runtimeapi.NamespaceMode_CONTAINER
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		pid = runtimeapi.NamespaceMode_POD
	}
	return &runtimeapi.NamespaceOption{
		Network: mode(pod.Spec.HostNetwork, runtimeapi.NamespaceMode_POD),
		Pid:     mode(pod.Spec.HostPID, pid),
		Ipc:     mode(pod.Spec.HostIPC, runtimeapi.NamespaceMode_POD),
	}
}

func sandboxSecurity(pod *v1.Pod) *runtimeapi.LinuxSandboxSecurityContext {
	sc := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil { // as kubelet: also without a user
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = psc.SupplementalGroups
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	for _, c := range allContainers(pod) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			sc.Privileged = true
		}
	}
	return sc
}

func podSysctls(pod *v1.Pod) map[string]string {
	if pod.Spec.SecurityContext == nil || len(pod.Spec.SecurityContext.Sysctls) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, s := range pod.Spec.SecurityContext.Sysctls {
		out[s.Name] = s.Value
	}
	return out
}

// containerHash identifies a container's spec: a container whose hash
// differs from its spec's is replaced.
func containerHash(c *v1.Container) string {
	data, _ := json.Marshal(c)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// containerConfig is the CRI config of one attempt of a container.
func (w *worker) containerConfig(pod *v1.Pod, c *v1.Container, s containerStart, facts podFacts, mounts []*runtimeapi.Mount) (*runtimeapi.ContainerConfig, error) {
	env, skipped, err := containerEnv(pod, c, facts)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	if len(skipped) > 0 {
		w.m.events.Record(w.eventPod(), c.Name, v1.EventTypeWarning, "InvalidEnvironmentVariableNames",
			fmt.Sprintf("Keys [%s] from envFrom were skipped since they are considered invalid environment variable names.", strings.Join(skipped, ", ")))
	}
	vals := map[string]string{}
	for _, kv := range env {
		vals[kv.Key] = string(kv.Value)
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	expandAll := func(in []string) []string {
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expand(s, lookup)
		}
		return out
	}
	labels := podLabels(pod)
	labels[labelContainerName] = c.Name
	annotations := map[string]string{
		annotationContainerHash: containerHash(c),
		annotationRestartCount:  strconv.FormatUint(uint64(s.attempt), 10),
		annotationGracePeriod:   strconv.FormatInt(podGrace(pod), 10),
		annotationBackoffStep:   strconv.Itoa(s.step),
		annotationKind:          string(s.kind),
		annotationOrder:         strconv.Itoa(s.order),
		annotationMessagePolicy: string(c.TerminationMessagePolicy),
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		data, err := json.Marshal(c.Lifecycle.PreStop)
		if err != nil {
			return nil, err
		}
		annotations[annotationPreStop] = string(data)
	}
	resources := containerResources(pod, c, w.m.memoryCapacity)
	resources.HugepageLimits = hugePageLimits(c.Resources.Limits, w.m.hugePageSizes)
	if w.m.unified {
		resources.Unified = swapSetting(swapLimit(w.m.cfg.SwapBehavior, pod, c, w.m.memoryCapacity, w.m.swapCapacity))
	}
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: s.attempt},
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command),
		Args:        expandAll(c.Args),
		WorkingDir:  c.WorkingDir,
		Envs:        env,
		Mounts:      mounts,
		Labels:      labels,
		Annotations: annotations,
		LogPath:     containerLogPath(c.Name, s.attempt),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		StopSignal:  stopSignal(c),
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       resources,
			SecurityContext: containerSecurity(pod, c),
		},
	}, nil
}

// containerLogPath is the log of one attempt, under the pod's log dir.
func containerLogPath(name string, attempt uint32) string {
	return filepath.Join(name, strconv.FormatUint(uint64(attempt), 10)+".log")
}

// stopSignal is the container's lifecycle.stopSignal; unset, the runtime
// uses the image's STOPSIGNAL, else SIGTERM.
func stopSignal(c *v1.Container) runtimeapi.Signal {
	if c.Lifecycle == nil || c.Lifecycle.StopSignal == nil {
		return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT
	}
	if sig, ok := runtimeapi.Signal_value["SIGNAL_"+string(*c.Lifecycle.StopSignal)]; ok {
		return runtimeapi.Signal(sig)
	}
	return runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT
}

// containerSecurity merges the pod's and the container's security
// contexts; the container's fields win.
func containerSecurity(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	var runAsUser, runAsGroup *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		runAsUser, runAsGroup = psc.RunAsUser, psc.RunAsGroup
		sc.SupplementalGroups = psc.SupplementalGroups
		if psc.FSGroup != nil {
			sc.SupplementalGroups = append(sc.SupplementalGroups, *psc.FSGroup)
		}
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			runAsUser = csc.RunAsUser
		}
		if csc.RunAsGroup != nil {
			runAsGroup = csc.RunAsGroup
		}
		if csc.Privileged != nil {
			sc.Privileged = *csc.Privileged
		}
		if csc.ReadOnlyRootFilesystem != nil {
			sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
		if csc.AllowPrivilegeEscalation != nil {
			sc.NoNewPrivs = !*csc.AllowPrivilegeEscalation
		}
		if caps := csc.Capabilities; caps != nil {
			sc.Capabilities = &runtimeapi.Capability{}
			for _, a := range caps.Add {
				sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(a))
			}
			for _, d := range caps.Drop {
				sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(d))
			}
		}
	}
	if runAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *runAsUser}
	}
	if runAsGroup != nil {
		// Without runAsUser, berth and containerd refuse it with a clear
		// error (CreateContainerError) rather than have it silently dropped.
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *runAsGroup}
	}
	return sc
}
