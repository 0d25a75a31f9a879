package manifest

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validateProbes(c *v1.Container, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, p := range []struct {
		name  string
		probe *v1.Probe
		// Liveness and startup decide on the first success; more would
		// only delay the decision.
		oneSuccess bool
	}{
		{"livenessProbe", c.LivenessProbe, true},
		{"readinessProbe", c.ReadinessProbe, false},
		{"startupProbe", c.StartupProbe, true},
	} {
		if p.probe != nil {
			errs = append(errs, validateProbe(p.probe, c, p.oneSuccess, fld.Child(p.name))...)
		}
	}
	return errs
}

func validateProbe(p *v1.Probe, c *v1.Container, oneSuccess bool, fld *field.Path) field.ErrorList {
	errs := oneOf(fld, "handler (exec, httpGet, tcpSocket or grpc)", members(&p.ProbeHandler))
	errs = append(errs, nonNegative(fld.Child("initialDelaySeconds"), p.InitialDelaySeconds)...)
	errs = append(errs, nonNegative(fld.Child("timeoutSeconds"), p.TimeoutSeconds)...)
	errs = append(errs, nonNegative(fld.Child("periodSeconds"), p.PeriodSeconds)...)
	errs = append(errs, nonNegative(fld.Child("successThreshold"), p.SuccessThreshold)...)
	errs = append(errs, nonNegative(fld.Child("failureThreshold"), p.FailureThreshold)...)
	if g := p.TerminationGracePeriodSeconds; g != nil {
		errs = append(errs, nonNegative(fld.Child("terminationGracePeriodSeconds"), *g)...)
	}
	if oneSuccess && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(fld.Child("successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	if h := p.Exec; h != nil && len(h.Command) == 0 {
		errs = append(errs, field.Required(fld.Child("exec", "command"), ""))
	}
	if h := p.HTTPGet; h != nil {
		errs = append(errs, validateProbePort(h.Port, c, fld.Child("httpGet", "port"))...)
		if h.Scheme != v1.URISchemeHTTP && h.Scheme != v1.URISchemeHTTPS {
			errs = append(errs, field.NotSupported(fld.Child("httpGet", "scheme"), h.Scheme, []v1.URIScheme{v1.URISchemeHTTP, v1.URISchemeHTTPS}))
		}
	}
	if h := p.TCPSocket; h != nil {
		errs = append(errs, validateProbePort(h.Port, c, fld.Child("tcpSocket", "port"))...)
	}
	if h := p.GRPC; h != nil {
		errs = append(errs, check(fld.Child("grpc", "port"), h.Port, validation.IsValidPortNum(int(h.Port)))...)
	}
	return errs
}

// validateProbePort accepts a port number or the name of one of the
// container's ports.
func validateProbePort(port intstr.IntOrString, c *v1.Container, fld *field.Path) field.ErrorList {
	if port.Type == intstr.Int {
		return check(fld, port.IntVal, validation.IsValidPortNum(int(port.IntVal)))
	}
	if slices.ContainsFunc(c.Ports, func(p v1.ContainerPort) bool { return p.Name == port.StrVal }) {
		return nil
	}
	return field.ErrorList{field.Invalid(fld, port.StrVal, "must be a port number or the name of one of the container's ports")}
}
