package manifest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// noAPIObjects explains why secrets, config maps, claims and the like are
// refused: there is no API server to read them from.
const noAPIObjects = "static pods cannot reference API objects"

// validatePod checks a defaulted pod for what the API server would
// refuse, for what a static pod cannot have, and for what berth does not
// support, so that a refused manifest fails at once with a reason rather
// than later in a pod worker. It never changes the pod.
func validatePod(pod *v1.Pod, nodeName string) field.ErrorList {
	errs := validateMetadata(&pod.ObjectMeta, nodeName, field.NewPath("metadata"))
	return append(errs, validateSpec(&pod.Spec, field.NewPath("spec"))...)
}

func validateMetadata(meta *metav1.ObjectMeta, nodeName string, fld *field.Path) field.ErrorList {
	errs := validName(fld.Child("name"), meta.Name, validation.IsDNS1123Subdomain)
	if len(errs) == 0 {
		static := meta.Name + "-" + nodeName
		if msgs := validation.IsDNS1123Subdomain(static); len(msgs) > 0 {
			errs = append(errs, field.Invalid(fld.Child("name"), meta.Name,
				fmt.Sprintf("with the node name appended, %q: %s", static, strings.Join(msgs, "; "))))
		}
	}
	errs = append(errs, check(fld.Child("namespace"), meta.Namespace, validation.IsDNS1123Label(meta.Namespace))...)
	for _, k := range slices.Sorted(maps.Keys(meta.Labels)) {
		errs = append(errs, check(fld.Child("labels"), k, content.IsLabelKey(k))...)
		errs = append(errs, check(fld.Child("labels").Key(k), meta.Labels[k], content.IsLabelValue(meta.Labels[k]))...)
	}
	for _, k := range slices.Sorted(maps.Keys(meta.Annotations)) {
		errs = append(errs, check(fld.Child("annotations"), k, content.IsLabelKey(k))...)
	}
	return append(errs, validateBerthAnnotations(meta.Annotations, fld.Child("annotations"))...)
}

// validateBerthAnnotations checks the annotations of berth's own that the
// agent reads (health-gated updates, pkg/agent/gate.go): a typo must not
// silently mean the default.
func validateBerthAnnotations(ann map[string]string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if v, ok := ann["berth.io/health-gated"]; ok && v != "true" && v != "false" {
		errs = append(errs, field.NotSupported(fld.Key("berth.io/health-gated"), v, []string{"true", "false"}))
	}
	for _, k := range []string{"berth.io/ready-deadline", "berth.io/min-ready"} {
		v, ok := ann[k]
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			errs = append(errs, field.Invalid(fld.Key(k), v, "must be a positive duration such as 5m or 30s"))
		}
	}
	return errs
}

func validateSpec(spec *v1.PodSpec, fld *field.Path) field.ErrorList {
	containers := sets.New[string]()
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		containers.Insert(c.Name)
	}
	volumes, errs := validateVolumes(spec.Volumes, containers, fld.Child("volumes"))
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(fld.Child("containers"), "a pod needs at least one container"))
	}
	errs = append(errs, validateContainers(spec, containers, volumes, fld)...)
	errs = append(errs, validateHostPorts(spec, fld)...)

	if !slices.Contains(restartPolicies, spec.RestartPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("restartPolicy"), spec.RestartPolicy, restartPolicies))
	}
	if !slices.Contains(dnsPolicies, spec.DNSPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("dnsPolicy"), spec.DNSPolicy, dnsPolicies))
	}
	if spec.DNSPolicy == v1.DNSNone && (spec.DNSConfig == nil || len(spec.DNSConfig.Nameservers) == 0) {
		errs = append(errs, field.Required(fld.Child("dnsConfig", "nameservers"), "at least one nameserver when dnsPolicy is None"))
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		errs = append(errs, nonNegative(fld.Child("terminationGracePeriodSeconds"), *g)...)
	}
	if len(spec.ImagePullSecrets) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("imagePullSecrets"), noAPIObjects+" (secrets)"))
	}
	if len(spec.ResourceClaims) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("resourceClaims"), noAPIObjects+" (resource claims)"))
	}
	if len(spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(fld.Child("ephemeralContainers"), "static pods cannot have ephemeral containers"))
	}
	errs = append(errs, validateHostUsers(spec, fld)...)
	return errs
}

// validateHostUsers: a pod with a user namespace of its own shares no other
// namespace with the host, as the API server requires.
func validateHostUsers(spec *v1.PodSpec, fld *field.Path) field.ErrorList {
	if spec.HostUsers == nil || *spec.HostUsers {
		return nil
	}
	var errs field.ErrorList
	for _, ns := range []struct {
		name string
		host bool
	}{{"hostNetwork", spec.HostNetwork}, {"hostPID", spec.HostPID}, {"hostIPC", spec.HostIPC}} {
		if ns.host {
			errs = append(errs, field.Forbidden(fld.Child(ns.name), "when `hostUsers` is false, "+ns.name+" must be false"))
		}
	}
	return errs
}

var (
	restartPolicies = []v1.RestartPolicy{v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever}
	dnsPolicies     = []v1.DNSPolicy{v1.DNSClusterFirst, v1.DNSClusterFirstWithHostNet, v1.DNSDefault, v1.DNSNone}
)

// validName requires name and checks it with isValid, one of the
// apimachinery validation functions.
func validName(fld *field.Path, name string, isValid func(string) []string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	return check(fld, name, isValid(name))
}

// check turns the messages of an apimachinery validation function into
// at most one error.
func check(fld *field.Path, value any, msgs []string) field.ErrorList {
	if len(msgs) == 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(fld, value, strings.Join(msgs, "; "))}
}

func nonNegative[T int32 | int64](fld *field.Path, v T) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(fld, v, "must be greater than or equal to 0")}
	}
	return nil
}

// relativePath refuses paths that could lead out of the directory they
// are joined to.
func relativePath(fld *field.Path, p string) field.ErrorList {
	switch {
	case strings.HasPrefix(p, "/"):
		return field.ErrorList{field.Invalid(fld, p, "must be a relative path")}
	case slices.Contains(strings.Split(p, "/"), ".."):
		return field.ErrorList{field.Invalid(fld, p, "must not contain '..'")}
	}
	return nil
}

// members lists the JSON names of the set pointer-to-struct fields of
// the struct s points to: the chosen members of a one-of such as
// VolumeSource or ProbeHandler. Reflection keeps the list complete as
// the API adds members.
func members(s any) []string {
	v := reflect.ValueOf(s).Elem()
	var set []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct && !v.Field(i).IsNil() {
			set = append(set, jsonName(f))
		}
	}
	return set
}

// oneOf reports unless exactly one member of a one-of is set.
func oneOf(fld *field.Path, what string, set []string) field.ErrorList {
	switch len(set) {
	case 0:
		return field.ErrorList{field.Required(fld, "must specify a "+what)}
	case 1:
		return nil
	}
	return field.ErrorList{field.Forbidden(fld, fmt.Sprintf("may specify only one %s, found %s", what, strings.Join(set, " and ")))}
}
