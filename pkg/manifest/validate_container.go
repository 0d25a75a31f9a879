package manifest

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateContainers checks init containers and containers; containers
// holds the names of both, volumes the names of the pod's volumes.
func validateContainers(spec *v1.PodSpec, containers, volumes sets.Set[string], fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]() // names are unique across both lists
	for i := range spec.InitContainers {
		c, cFld := &spec.InitContainers[i], fld.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, seen, containers, volumes, cFld)...)
		errs = append(errs, validateInitContainer(c, cFld)...)
	}
	for i := range spec.Containers {
		c, cFld := &spec.Containers[i], fld.Child("containers").Index(i)
		errs = append(errs, validateContainer(c, seen, containers, volumes, cFld)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(cFld.Child("restartPolicy"), "only init containers (sidecars) may set it"))
		}
	}
	if spec.Resources != nil {
		errs = append(errs, validatePodResources(spec, fld.Child("resources"))...)
	}
	return errs
}

// validatePodResources checks pod-level resources: CPU and memory only,
// and at least what the containers request together.
func validatePodResources(spec *v1.PodSpec, fld *field.Path) field.ErrorList {
	errs := validateResources(spec.Resources, fld)
	for _, list := range []struct {
		name string
		v1.ResourceList
	}{{"limits", spec.Resources.Limits}, {"requests", spec.Resources.Requests}} {
		for _, name := range slices.Sorted(maps.Keys(list.ResourceList)) {
			if name != v1.ResourceCPU && name != v1.ResourceMemory {
				errs = append(errs, field.NotSupported(fld.Child(list.name).Key(string(name)), name, []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory}))
			}
		}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		pod, ok := spec.Resources.Requests[name]
		if !ok {
			continue
		}
		var sum resource.Quantity
		for _, c := range spec.Containers {
			if q, ok := c.Resources.Requests[name]; ok {
				sum.Add(q)
			}
		}
		if pod.Cmp(sum) < 0 {
			errs = append(errs, field.Invalid(fld.Child("requests").Key(string(name)), pod.String(),
				fmt.Sprintf("must be at least what the containers request together (%s)", sum.String())))
		}
	}
	return errs
}

func validateContainer(c *v1.Container, seen, containers, volumes sets.Set[string], fld *field.Path) field.ErrorList {
	errs := validName(fld.Child("name"), c.Name, validation.IsDNS1123Label)
	if c.Name != "" && seen.Has(c.Name) {
		errs = append(errs, field.Duplicate(fld.Child("name"), c.Name))
	}
	seen.Insert(c.Name)
	if c.Image == "" {
		errs = append(errs, field.Required(fld.Child("image"), ""))
	}
	if !slices.Contains(pullPolicies, c.ImagePullPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("imagePullPolicy"), c.ImagePullPolicy, pullPolicies))
	}
	if !slices.Contains(messagePolicies, c.TerminationMessagePolicy) {
		errs = append(errs, field.NotSupported(fld.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, messagePolicies))
	}
	if len(c.RestartPolicyRules) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("restartPolicyRules"), "not supported by berth"))
	}
	errs = append(errs, validatePorts(c.Ports, fld.Child("ports"))...)
	errs = append(errs, validateEnv(c, containers, fld)...)
	errs = append(errs, validateResources(&c.Resources, fld.Child("resources"))...)
	errs = append(errs, validateMounts(c.VolumeMounts, volumes, fld.Child("volumeMounts"))...)
	return append(errs, validateProbes(c, fld)...)
}

var (
	pullPolicies    = []v1.PullPolicy{v1.PullAlways, v1.PullIfNotPresent, v1.PullNever}
	messagePolicies = []v1.TerminationMessagePolicy{v1.TerminationMessageReadFile, v1.TerminationMessageFallbackToLogsOnError}
)

// validateInitContainer applies the rules that tell a plain init
// container, which runs to completion before the others start, from a
// sidecar (restartPolicy Always), which runs beside them.
func validateInitContainer(c *v1.Container, fld *field.Path) field.ErrorList {
	if c.RestartPolicy != nil {
		if *c.RestartPolicy != v1.ContainerRestartPolicyAlways {
			return field.ErrorList{field.NotSupported(fld.Child("restartPolicy"), *c.RestartPolicy,
				[]v1.ContainerRestartPolicy{v1.ContainerRestartPolicyAlways})}
		}
		return nil
	}
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"lifecycle", c.Lifecycle != nil},
		{"livenessProbe", c.LivenessProbe != nil},
		{"readinessProbe", c.ReadinessProbe != nil},
		{"startupProbe", c.StartupProbe != nil},
	} {
		if f.set {
			errs = append(errs, field.Forbidden(fld.Child(f.name), "may not be set for init containers without restartPolicy Always"))
		}
	}
	return errs
}

func validatePorts(ports []v1.ContainerPort, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		pFld := fld.Index(i)
		if p.Name != "" {
			errs = append(errs, check(pFld.Child("name"), p.Name, validation.IsValidPortName(p.Name))...)
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(pFld.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		errs = append(errs, check(pFld.Child("containerPort"), p.ContainerPort, validation.IsValidPortNum(int(p.ContainerPort)))...)
		if p.HostPort != 0 {
			errs = append(errs, check(pFld.Child("hostPort"), p.HostPort, validation.IsValidPortNum(int(p.HostPort)))...)
		}
		if !slices.Contains(protocols, p.Protocol) {
			errs = append(errs, field.NotSupported(pFld.Child("protocol"), p.Protocol, protocols))
		}
	}
	return errs
}

var protocols = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}

// validateHostPorts refuses a pod whose containers would bind the same
// host port: the second one could never start. Containers and sidecars
// run together; a plain init container runs alone.
func validateHostPorts(spec *v1.PodSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	together := map[string]bool{}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		used := map[string]bool{}
		if c.RestartPolicy != nil {
			used = together
		}
		errs = append(errs, hostPortClashes(c, used, spec.HostNetwork, fld.Child("initContainers").Index(i))...)
	}
	for i := range spec.Containers {
		errs = append(errs, hostPortClashes(&spec.Containers[i], together, spec.HostNetwork, fld.Child("containers").Index(i))...)
	}
	return errs
}

func hostPortClashes(c *v1.Container, used map[string]bool, hostNetwork bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range c.Ports {
		pFld := fld.Child("ports").Index(i).Child("hostPort")
		if hostNetwork && p.HostPort != p.ContainerPort {
			errs = append(errs, field.Invalid(pFld, p.HostPort, "must match containerPort when hostNetwork is true"))
		}
		if p.HostPort == 0 {
			continue
		}
		key := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
		if used[key] {
			errs = append(errs, field.Duplicate(pFld, key))
		}
		used[key] = true
	}
	return errs
}

func validateEnv(c *v1.Container, containers sets.Set[string], fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range c.Env {
		eFld := fld.Child("env").Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(eFld.Child("name"), ""))
		}
		if e.ValueFrom == nil {
			continue
		}
		if e.Value != "" {
			errs = append(errs, field.Forbidden(eFld.Child("valueFrom"), "may not be set together with value"))
		}
		errs = append(errs, validateEnvSource(e.ValueFrom, containers, eFld.Child("valueFrom"))...)
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("envFrom"), noAPIObjects+" (config maps, secrets)"))
	}
	return errs
}

func validateEnvSource(src *v1.EnvVarSource, containers sets.Set[string], fld *field.Path) field.ErrorList {
	set := members(src)
	if errs := oneOf(fld, "source", set); len(errs) > 0 {
		return errs
	}
	switch set[0] {
	case "fieldRef":
		return validateFieldRef(src.FieldRef, envFieldPaths, fld.Child("fieldRef"))
	case "resourceFieldRef":
		return validateResourceFieldRef(src.ResourceFieldRef, containers, false, fld.Child("resourceFieldRef"))
	case "secretKeyRef", "configMapKeyRef":
		return field.ErrorList{field.Forbidden(fld.Child(set[0]), noAPIObjects)}
	}
	return field.ErrorList{field.Forbidden(fld.Child(set[0]), "not supported by berth; use fieldRef or resourceFieldRef")}
}

func validateResources(r *v1.ResourceRequirements, fld *field.Path) field.ErrorList {
	errs := validateResourceList(r.Limits, fld.Child("limits"))
	errs = append(errs, validateResourceList(r.Requests, fld.Child("requests"))...)
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		request := r.Requests[name]
		if limit, ok := r.Limits[name]; ok && request.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(fld.Child("requests").Key(string(name)), request.String(),
				fmt.Sprintf("must be less than or equal to the %s limit of %s", name, limit.String())))
		}
	}
	if len(r.Claims) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("claims"), noAPIObjects+" (resource claims)"))
	}
	return errs
}

func validateResourceList(list v1.ResourceList, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range slices.Sorted(maps.Keys(list)) {
		q := list[name]
		qFld := fld.Key(string(name))
		if !supportedResource(name) {
			errs = append(errs, field.NotSupported(qFld, name, supportedResources))
		}
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(qFld, q.String(), "must be greater than or equal to 0"))
		}
		if most, ok := maxQuantity[name]; ok && q.Cmp(most) > 0 {
			errs = append(errs, field.Invalid(qFld, q.String(), fmt.Sprintf("must be at most %s, more than any node has or a cgroup can express", most.String())))
		}
	}
	return errs
}

// maxQuantity bounds what no node has: a million cores (cgroups' CPU
// quota ends not far above), a pebibyte of memory, an exbibyte of disk.
// A pod asking for more would only ever fail to start, or run with a
// limit that limits nothing.
var maxQuantity = map[v1.ResourceName]resource.Quantity{
	v1.ResourceCPU:              resource.MustParse("1M"),
	v1.ResourceMemory:           resource.MustParse("1Pi"),
	v1.ResourceEphemeralStorage: resource.MustParse("1Ei"),
}

var supportedResources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, v1.ResourceHugePagesPrefix + "<size>"}

func supportedResource(name v1.ResourceName) bool {
	switch name {
	case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage:
		return true
	}
	size, ok := strings.CutPrefix(string(name), v1.ResourceHugePagesPrefix)
	if !ok {
		return false
	}
	q, err := resource.ParseQuantity(size)
	return err == nil && q.Sign() > 0
}

func validateMounts(mounts []v1.VolumeMount, volumes sets.Set[string], fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	targets := sets.New[string]()
	for i, m := range mounts {
		mFld := fld.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mFld.Child("name"), ""))
		case !volumes.Has(m.Name):
			errs = append(errs, field.NotFound(mFld.Child("name"), m.Name))
		}
		switch target := path.Clean(m.MountPath); {
		case m.MountPath == "":
			errs = append(errs, field.Required(mFld.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			errs = append(errs, field.Invalid(mFld.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case targets.Has(target):
			errs = append(errs, field.Duplicate(mFld.Child("mountPath"), m.MountPath))
		default:
			targets.Insert(target)
		}
		errs = append(errs, relativePath(mFld.Child("subPath"), m.SubPath)...)
		errs = append(errs, relativePath(mFld.Child("subPathExpr"), m.SubPathExpr)...)
		if m.SubPath != "" && m.SubPathExpr != "" {
			errs = append(errs, field.Forbidden(mFld.Child("subPathExpr"), "may not be set together with subPath"))
		}
	}
	return errs
}
