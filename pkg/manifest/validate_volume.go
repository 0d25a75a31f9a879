package manifest

import (
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateVolumes checks the pod's volumes and returns their names, for
// the volume mounts to refer to.
func validateVolumes(volumes []v1.Volume, containers sets.Set[string], fld *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range volumes {
		v, vFld := &volumes[i], fld.Index(i)
		errs = append(errs, validName(vFld.Child("name"), v.Name, validation.IsDNS1123Label)...)
		if v.Name != "" && names.Has(v.Name) {
			errs = append(errs, field.Duplicate(vFld.Child("name"), v.Name))
		}
		names.Insert(v.Name)
		errs = append(errs, validateVolumeSource(v, containers, vFld)...)
	}
	return names, errs
}

// apiObjectSources are volume sources that need an API server: to read
// secrets, config maps and service account tokens, or to bind claims.
var apiObjectSources = []string{"secret", "configMap", "persistentVolumeClaim", "projected", "ephemeral"}

func validateVolumeSource(v *v1.Volume, containers sets.Set[string], fld *field.Path) field.ErrorList {
	set := members(&v.VolumeSource)
	if errs := oneOf(fld, "volume source", set); len(errs) > 0 {
		return errs
	}
	switch {
	case v.EmptyDir != nil:
		return validateEmptyDir(v.EmptyDir, fld.Child("emptyDir"))
	case v.HostPath != nil:
		return validateHostPath(v.HostPath, fld.Child("hostPath"))
	case v.DownwardAPI != nil:
		return validateDownwardAPI(v.DownwardAPI, containers, fld.Child("downwardAPI"))
	case slices.Contains(apiObjectSources, set[0]):
		return field.ErrorList{field.Forbidden(fld.Child(set[0]),
			fmt.Sprintf("%s: volume %q cannot use a %s volume", noAPIObjects, v.Name, set[0]))}
	}
	return field.ErrorList{field.Forbidden(fld.Child(set[0]),
		fmt.Sprintf("volume %q: %s volumes are not supported by berth (use emptyDir, hostPath or downwardAPI)", v.Name, set[0]))}
}

func validateEmptyDir(d *v1.EmptyDirVolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if media := []v1.StorageMedium{v1.StorageMediumDefault, v1.StorageMediumMemory}; !slices.Contains(media, d.Medium) {
		errs = append(errs, field.NotSupported(fld.Child("medium"), d.Medium, media))
	}
	if d.SizeLimit != nil && d.SizeLimit.Sign() < 0 {
		errs = append(errs, field.Invalid(fld.Child("sizeLimit"), d.SizeLimit.String(), "must be greater than or equal to 0"))
	}
	return errs
}

var hostPathTypes = []v1.HostPathType{
	v1.HostPathUnset, v1.HostPathDirectoryOrCreate, v1.HostPathDirectory, v1.HostPathFileOrCreate,
	v1.HostPathFile, v1.HostPathSocket, v1.HostPathCharDev, v1.HostPathBlockDev,
}

func validateHostPath(h *v1.HostPathVolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case h.Path == "":
		errs = append(errs, field.Required(fld.Child("path"), ""))
	case !path.IsAbs(h.Path):
		errs = append(errs, field.Invalid(fld.Child("path"), h.Path, "must be an absolute path"))
	case slices.Contains(strings.Split(h.Path, "/"), ".."):
		errs = append(errs, field.Invalid(fld.Child("path"), h.Path, "must not contain '..'"))
	}
	if h.Type != nil && !slices.Contains(hostPathTypes, *h.Type) {
		errs = append(errs, field.NotSupported(fld.Child("type"), *h.Type, hostPathTypes))
	}
	return errs
}

func validateDownwardAPI(d *v1.DownwardAPIVolumeSource, containers sets.Set[string], fld *field.Path) field.ErrorList {
	errs := validateMode(fld.Child("defaultMode"), d.DefaultMode)
	for i := range d.Items {
		item, iFld := &d.Items[i], fld.Child("items").Index(i)
		if item.Path == "" {
			errs = append(errs, field.Required(iFld.Child("path"), ""))
		}
		errs = append(errs, relativePath(iFld.Child("path"), item.Path)...)
		errs = append(errs, validateMode(iFld.Child("mode"), item.Mode)...)
		set := members(item)
		if oneErrs := oneOf(iFld, "fieldRef or resourceFieldRef", set); len(oneErrs) > 0 {
			errs = append(errs, oneErrs...)
			continue
		}
		if item.FieldRef != nil {
			errs = append(errs, validateFieldRef(item.FieldRef, volumeFieldPaths, iFld.Child("fieldRef"))...)
		} else {
			errs = append(errs, validateResourceFieldRef(item.ResourceFieldRef, containers, true, iFld.Child("resourceFieldRef"))...)
		}
	}
	return errs
}

func validateMode(fld *field.Path, mode *int32) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(fld, *mode, "must be a file mode between 0 and 0777 (octal)")}
	}
	return nil
}

// The pod fields the downward API exposes, besides single labels and
// annotations (metadata.labels['key']). Volumes cannot hold values that
// change while the pod runs (its IPs); environment variables cannot
// hold whole maps.
var (
	envFieldPaths = []string{
		"metadata.name", "metadata.namespace", "metadata.uid",
		"metadata.labels['<key>']", "metadata.annotations['<key>']",
		"spec.nodeName", "spec.serviceAccountName",
		"status.podIP", "status.podIPs", "status.hostIP", "status.hostIPs",
	}
	volumeFieldPaths = []string{
		"metadata.name", "metadata.namespace", "metadata.uid",
		"metadata.labels", "metadata.annotations",
		"metadata.labels['<key>']", "metadata.annotations['<key>']",
	}
)

func validateFieldRef(ref *v1.ObjectFieldSelector, allowed []string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(fld.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
	}
	if key, ok := subscript(ref.FieldPath); ok {
		return append(errs, check(fld.Child("fieldPath"), ref.FieldPath, content.IsLabelKey(key))...)
	}
	if !slices.Contains(allowed, ref.FieldPath) {
		errs = append(errs, field.NotSupported(fld.Child("fieldPath"), ref.FieldPath, allowed))
	}
	return errs
}

// subscript returns the key of metadata.labels['key'] or
// metadata.annotations['key'].
func subscript(fieldPath string) (string, bool) {
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if rest, ok := strings.CutPrefix(fieldPath, prefix); ok {
			return strings.CutSuffix(rest, "']")
		}
	}
	return "", false
}

var resourceFieldPaths = []string{
	"limits.cpu", "limits.memory", "limits.ephemeral-storage", "limits.hugepages-<size>",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage", "requests.hugepages-<size>",
}

// validateResourceFieldRef checks a reference to a container's resources;
// an environment variable may leave out the container (its own), a
// volume may not.
func validateResourceFieldRef(ref *v1.ResourceFieldSelector, containers sets.Set[string], needContainer bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case ref.ContainerName == "" && needContainer:
		errs = append(errs, field.Required(fld.Child("containerName"), ""))
	case ref.ContainerName != "" && !containers.Has(ref.ContainerName):
		errs = append(errs, field.NotFound(fld.Child("containerName"), ref.ContainerName))
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	if kind != "limits" && kind != "requests" || !supportedResource(v1.ResourceName(name)) {
		errs = append(errs, field.NotSupported(fld.Child("resource"), ref.Resource, resourceFieldPaths))
	}
	if ref.Divisor.Sign() < 0 {
		errs = append(errs, field.Invalid(fld.Child("divisor"), ref.Divisor.String(), "must be greater than or equal to 0"))
	}
	return errs
}
