package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/berth-project/berth/pkg/eviction"
)

// The kinds a configuration file may hold, one per YAML document. A
// document without a kind is berth's own, as a BerthConfiguration is.
const (
	BerthAPIVersion   = "berth.dev/v1alpha1"
	BerthKind         = "BerthConfiguration"
	KubeletAPIVersion = "kubelet.config.k8s.io/v1beta1"
	KubeletKind       = "KubeletConfiguration"
)

// LoadFile reads a configuration file over c: YAML or JSON, one or more
// documents, each a KubeletConfiguration (the fields whose meaning berth
// shares are honoured) or berth's own settings. Unknown fields and bad
// values are errors naming the file, line and field; KubeletConfiguration
// fields berth does not support are returned as a warning, never silently
// ignored.
func (c *Config) LoadFile(file string) (warnings []string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for i, doc := range splitDocuments(data) {
		where := fmt.Sprintf("config %s", file)
		if i > 0 {
			where = fmt.Sprintf("config %s (document %d)", file, i+1)
		}
		w, err := c.loadDocument(doc.data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", where, withLine(doc, err))
		}
		for _, s := range w {
			warnings = append(warnings, where+": "+s)
		}
	}
	return warnings, nil
}

// LoadDir reads the *.conf files of a drop-in directory over c in
// lexical order, each as LoadFile does, as kubelet's --config-dir.
func (c *Config) LoadDir(dir string) (warnings []string, err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("config dir: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, fmt.Errorf("config dir %s: %w", dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		w, err := c.LoadFile(f)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

type document struct {
	data      []byte
	firstLine int // of the document in the file, from 1
}

// splitDocuments cuts YAML at its "---" lines; JSON is one document.
func splitDocuments(data []byte) []document {
	var docs []document
	start := 0
	lines := bytes.SplitAfter(data, []byte("\n"))
	var cur []byte
	for i, l := range lines {
		if t := bytes.TrimRight(l, " \t\r\n"); string(t) == "---" {
			if len(bytes.TrimSpace(cur)) > 0 {
				docs = append(docs, document{cur, start + 1})
			}
			cur, start = nil, i+1
			continue
		}
		cur = append(cur, l...)
	}
	if len(bytes.TrimSpace(cur)) > 0 {
		docs = append(docs, document{cur, start + 1})
	}
	return docs
}

func (c *Config) loadDocument(data []byte) ([]string, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, err
	}
	switch {
	case tm.Kind == KubeletKind && tm.APIVersion == KubeletAPIVersion:
		return c.applyKubelet(data)
	case tm.Kind == "" && tm.APIVersion == "", tm.Kind == BerthKind && tm.APIVersion == BerthAPIVersion:
		var fields map[string]json.RawMessage
		if err := yaml.Unmarshal(data, &fields); err != nil {
			return nil, err
		}
		delete(fields, "apiVersion")
		delete(fields, "kind")
		clean, err := json.Marshal(fields)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(clean))
		dec.DisallowUnknownFields()
		return nil, dec.Decode(c)
	}
	return nil, fmt.Errorf("kind %q of apiVersion %q: berth reads %s (%s) and %s (%s)",
		tm.Kind, tm.APIVersion, KubeletKind, KubeletAPIVersion, BerthKind, BerthAPIVersion)
}

// kubeletFields are the KubeletConfiguration fields berth honours, each
// with what it sets (or why a value is refused); every other field that
// is set is reported. A field is applied only when the document sets it.
var kubeletFields = map[string]func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error{
	"apiVersion": func(*Config, *kubeletv1beta1.KubeletConfiguration) error { return nil },
	"kind":       func(*Config, *kubeletv1beta1.KubeletConfiguration) error { return nil },
	"staticPodPath": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.StaticPodPath = kc.StaticPodPath
		return nil
	},
	"staticPodURL": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.StaticPodURL = kc.StaticPodURL
		return nil
	},
	"staticPodURLHeader": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.StaticPodURLHeader = kc.StaticPodURLHeader
		return nil
	},
	"httpCheckFrequency": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.HTTPCheckFrequency = Duration{kc.HTTPCheckFrequency.Duration}
		return nil
	},
	"containerRuntimeEndpoint": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ContainerRuntimeEndpoint = kc.ContainerRuntimeEndpoint
		return nil
	},
	"cgroupDriver": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.CgroupDriver = kc.CgroupDriver
		return nil
	},
	// kubelet's cgroupRoot holds its kubepods hierarchy; berth's setting
	// names the hierarchy itself.
	"cgroupRoot": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.CgroupRoot = path.Join(strings.Trim(kc.CgroupRoot, "/"), "kubepods")
		return nil
	},
	"podLogsDir": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.PodLogsDir = kc.PodLogsDir
		return nil
	},
	"imageGCHighThresholdPercent": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ImageGCHighThresholdPercent = int(ptr.Deref(kc.ImageGCHighThresholdPercent, int32(c.ImageGCHighThresholdPercent)))
		return nil
	},
	"imageGCLowThresholdPercent": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ImageGCLowThresholdPercent = int(ptr.Deref(kc.ImageGCLowThresholdPercent, int32(c.ImageGCLowThresholdPercent)))
		return nil
	},
	"imageMinimumGCAge": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ImageMinimumGCAge = Duration{kc.ImageMinimumGCAge.Duration}
		return nil
	},
	"containerLogMaxSize": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ContainerLogMaxSize = kc.ContainerLogMaxSize
		return nil
	},
	"containerLogMaxFiles": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ContainerLogMaxFiles = int(ptr.Deref(kc.ContainerLogMaxFiles, int32(c.ContainerLogMaxFiles)))
		return nil
	},
	"failSwapOn": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.FailSwapOn = ptr.Deref(kc.FailSwapOn, c.FailSwapOn)
		return nil
	},
	"memorySwap": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.SwapBehavior = kc.MemorySwap.SwapBehavior
		return nil
	},
	"address": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error { c.Address = kc.Address; return nil },
	"port":    func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error { c.Port = int(kc.Port); return nil },
	"tlsCertFile": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.TLSCertFile = kc.TLSCertFile
		return nil
	},
	"tlsPrivateKeyFile": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.TLSPrivateKeyFile = kc.TLSPrivateKeyFile
		return nil
	},
	"readOnlyPort": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ReadOnlyPort = int(kc.ReadOnlyPort)
		return nil
	},
	"healthzBindAddress": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.HealthzBindAddress = kc.HealthzBindAddress
		return nil
	},
	"healthzPort": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.HealthzPort = int(ptr.Deref(kc.HealthzPort, int32(c.HealthzPort)))
		return nil
	},
	"maxPods": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.MaxPods = int(kc.MaxPods)
		return nil
	},
	"resolvConf": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ResolvConf = ptr.Deref(kc.ResolverConfig, c.ResolvConf)
		return nil
	},
	"clusterDNS": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ClusterDNS = kc.ClusterDNS
		return nil
	},
	"clusterDomain": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ClusterDomain = kc.ClusterDomain
		return nil
	},
	// kubelet serializes pulls by default; berth pulls in parallel unless
	// told (a file that says serializeImagePulls: true gets kubelet's).
	"serializeImagePulls": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		switch {
		case ptr.Deref(kc.SerializeImagePulls, false) && ptr.Deref(kc.MaxParallelImagePulls, 1) > 1:
			return fmt.Errorf("maxParallelImagePulls %d: must not be above 1 while serializeImagePulls is true", *kc.MaxParallelImagePulls)
		case ptr.Deref(kc.SerializeImagePulls, false):
			c.MaxParallelImagePulls = 1
		case kc.MaxParallelImagePulls == nil:
			c.MaxParallelImagePulls = 0
		}
		return nil
	},
	"maxParallelImagePulls": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if n := ptr.Deref(kc.MaxParallelImagePulls, 0); n < 1 {
			return fmt.Errorf("maxParallelImagePulls %d: must be at least 1", n)
		}
		c.MaxParallelImagePulls = int(*kc.MaxParallelImagePulls)
		return nil
	},
	"crashLoopBackOff.maxContainerRestartPeriod": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if d := kc.CrashLoopBackOff.MaxContainerRestartPeriod; d != nil {
			c.MaxContainerRestartPeriod = Duration{d.Duration}
		}
		return nil
	},
	// Setting evictionHard replaces kubelet's defaults unless
	// mergeDefaultEvictionSettings says to keep those it does not name.
	"evictionHard": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if err := eviction.CheckValues(kc.EvictionHard, false); err != nil {
			return err
		}
		c.EvictionHard = kc.EvictionHard
		if ptr.Deref(kc.MergeDefaultEvictionSettings, false) {
			c.EvictionHard = eviction.DefaultHard()
			maps.Copy(c.EvictionHard, kc.EvictionHard)
		}
		return nil
	},
	"mergeDefaultEvictionSettings": func(*Config, *kubeletv1beta1.KubeletConfiguration) error { return nil },
	"evictionSoft": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if err := eviction.CheckValues(kc.EvictionSoft, false); err != nil {
			return err
		}
		c.EvictionSoft = kc.EvictionSoft
		return nil
	},
	"evictionSoftGracePeriod": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if err := eviction.CheckValues(kc.EvictionSoftGracePeriod, true); err != nil {
			return err
		}
		c.EvictionSoftGracePeriod = kc.EvictionSoftGracePeriod
		return nil
	},
	"evictionMinimumReclaim": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if err := eviction.CheckValues(kc.EvictionMinimumReclaim, false); err != nil {
			return err
		}
		c.EvictionMinimumReclaim = kc.EvictionMinimumReclaim
		return nil
	},
	"evictionMaxPodGracePeriod": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.EvictionMaxPodGracePeriod = int64(kc.EvictionMaxPodGracePeriod)
		return nil
	},
	// kubelet reads 0s as its default.
	"evictionPressureTransitionPeriod": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if d := kc.EvictionPressureTransitionPeriod.Duration; d != 0 {
			c.EvictionPressureTransitionPeriod = Duration{d}
		}
		return nil
	},
	"shutdownGracePeriod": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ShutdownGracePeriod = Duration{kc.ShutdownGracePeriod.Duration}
		return nil
	},
	"shutdownGracePeriodCriticalPods": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ShutdownGracePeriodCriticalPods = Duration{kc.ShutdownGracePeriodCriticalPods.Duration}
		return nil
	},
	"registerWithTaints": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.RegisterWithTaints = kc.RegisterWithTaints
		return nil
	},
	"authentication.x509.clientCAFile": func(c *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		c.ClientCAFile = kc.Authentication.X509.ClientCAFile
		return nil
	},
	// What berth's kubelet API always does: anything else is an error
	// rather than a weaker setting silently not applied.
	"authentication.anonymous.enabled": func(_ *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if ptr.Deref(kc.Authentication.Anonymous.Enabled, false) {
			return errors.New("authentication.anonymous.enabled: berth's kubelet API never admits anonymous requests")
		}
		return nil
	},
	"authentication.webhook.enabled": func(_ *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if !ptr.Deref(kc.Authentication.Webhook.Enabled, true) {
			return errors.New("authentication.webhook.enabled: berth's kubelet API always reviews bearer tokens with the API server")
		}
		return nil
	},
	"authorization.mode": func(_ *Config, kc *kubeletv1beta1.KubeletConfiguration) error {
		if kc.Authorization.Mode != kubeletv1beta1.KubeletAuthorizationModeWebhook {
			return fmt.Errorf("authorization.mode %q: berth's kubelet API authorizes by the API server (Webhook) only", kc.Authorization.Mode)
		}
		return nil
	},
}

// applyKubelet sets c from the fields a KubeletConfiguration sets.
func (c *Config) applyKubelet(data []byte) ([]string, error) {
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(data, &kc); err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	fields := leafFields("", raw)
	slices.Sort(fields)
	var unsupported []string
	for _, f := range fields {
		apply, ok := kubeletFields[f]
		if !ok {
			unsupported = append(unsupported, f)
			continue
		}
		if err := apply(c, &kc); err != nil {
			return nil, fieldError{f, err}
		}
	}
	if len(unsupported) == 0 {
		return nil, nil
	}
	return []string{fmt.Sprintf("%s fields berth does not support yet, ignored: %s", KubeletKind, strings.Join(unsupported, ", "))}, nil
}

// leafFields names the fields set in a decoded document, dotted below
// objects: authentication.x509.clientCAFile. Lists and maps of values
// (taints, labels, thresholds) are one field.
func leafFields(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		sub, ok := v.(map[string]any)
		if ok && structured[name] {
			out = append(out, leafFields(name, sub)...)
			continue
		}
		out = append(out, name)
	}
	return out
}

// structured are the objects of KubeletConfiguration whose fields berth
// tells apart.
var structured = map[string]bool{
	"authentication": true, "authentication.x509": true, "authentication.webhook": true,
	"authentication.anonymous": true, "authorization": true, "crashLoopBackOff": true,
}

var fieldInError = regexp.MustCompile(`(?:unknown field |Go struct field [A-Za-z0-9]+\.)"?([A-Za-z0-9_.]+)"?`)

// fieldError is a bad value of a field the decoder accepted.
type fieldError struct {
	field string
	err   error
}

func (e fieldError) Error() string { return e.err.Error() }
func (e fieldError) Unwrap() error { return e.err }

// withLine adds the line of the field an error names, found in the
// document's YAML, as "line 7: field maxPods: …".
func withLine(doc document, err error) string {
	msg := strings.TrimPrefix(err.Error(), "error unmarshaling JSON: while decoding JSON: ")
	var field string
	var fe fieldError
	if m := fieldInError.FindStringSubmatch(msg); m != nil {
		field = m[1]
	} else if errors.As(err, &fe) {
		field = fe.field
	} else {
		return msg
	}
	var root yamlv3.Node
	if yamlv3.Unmarshal(doc.data, &root) != nil {
		return msg
	}
	if line := keyLine(&root, field[strings.LastIndex(field, ".")+1:]); line > 0 {
		return fmt.Sprintf("line %d: field %s: %s", doc.firstLine+line-1, field, msg)
	}
	return fmt.Sprintf("field %s: %s", field, msg)
}

// keyLine is the line of the first mapping key named key, 0 if none.
func keyLine(n *yamlv3.Node, key string) int {
	if n.Kind == yamlv3.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := keyLine(c, key); l > 0 {
			return l
		}
	}
	return 0
}
