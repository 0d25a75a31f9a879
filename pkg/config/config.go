// Package config is berthd's configuration: defaults, then an optional
// JSON file, then the command-line flags that were set. Validate reports
// problems without changing anything.
package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berth-project/berth/pkg/eviction"
)

// Config is everything berthd can be told.
type Config struct {
	CRISocket   string `json:"criSocket"`
	Root        string `json:"root"`
	State       string `json:"state"`
	RuncBinary  string `json:"runcBinary"`
	ShimBinary  string `json:"shimBinary"`
	PauseBinary string `json:"pauseBinary"`
	// ExecBinary is berth-exec, which runs execs (probes, crictl exec
	// without a terminal) without runc's start-up cost; "" sends every
	// exec through runc.
	ExecBinary   string   `json:"execBinary"`
	CNIBinDirs   []string `json:"cniBinDirs"`
	CNIConfDir   string   `json:"cniConfDir"`
	CgroupDriver string   `json:"cgroupDriver"`
	PodCIDR      string   `json:"podCIDR"`
	LogLevel     string   `json:"logLevel"`
	// RegistryConfig is the registry configuration file (mirrors, plain
	// HTTP, CAs). The default path may be absent; a path that was set
	// explicitly must exist.
	RegistryConfig string `json:"registryConfig"`
	// Image garbage collection, as kubelet's settings of the same names.
	ImageGCHighThresholdPercent int      `json:"imageGCHighThresholdPercent"`
	ImageGCLowThresholdPercent  int      `json:"imageGCLowThresholdPercent"`
	ImageMinimumGCAge           Duration `json:"imageMinimumGCAge"`
	// StreamingAddress is the host:port of the exec/attach/port-forward
	// server; port 0 picks a free one. The URLs handed out name it.
	StreamingAddress string `json:"streamingAddress"`

	// The agent. StaticPodPath "" turns it off (berthd is then only a CRI
	// runtime).
	StaticPodPath string `json:"staticPodPath"`
	// NodeName is appended to static pod names, lowercased as kubelet
	// does; "" means the host name.
	NodeName   string `json:"nodeName"`
	PodLogsDir string `json:"podLogsDir"`
	// APISocket serves the read-only local API; "" means <state>/api.sock.
	APISocket string `json:"apiSocket"`
	// APIAddress also serves it on TCP (host:port); "" means not at all.
	APIAddress string `json:"apiAddress"`
	// ContainerRuntimeEndpoint is the CRI the agent drives; "" means
	// berthd's own (unix://<criSocket>).
	ContainerRuntimeEndpoint string `json:"containerRuntimeEndpoint"`
	// CgroupRoot is the root of the pods' QoS cgroup hierarchy.
	CgroupRoot string `json:"cgroupRoot"`

	// Upstream is the control plane plugin: none, url (StaticPodURL) or
	// kubernetes (Kubeconfig); "" means url when StaticPodURL is set,
	// kubernetes when Kubeconfig is, else none.
	Upstream string `json:"upstream"`
	// Kubeconfig, NodeIP, NodeLabels and RegisterWithTaints are kubelet's
	// settings of the same names for the kubernetes plugin.
	Kubeconfig string `json:"kubeconfig"`
	// BootstrapKubeconfig joins by TLS bootstrap: berth asks for a node
	// certificate, keeps it in CertDir ("" means <root>/pki) and writes
	// Kubeconfig to use it.
	BootstrapKubeconfig string            `json:"bootstrapKubeconfig"`
	CertDir             string            `json:"certDir"`
	NodeIP              string            `json:"nodeIP"`
	NodeLabels          map[string]string `json:"nodeLabels"`
	RegisterWithTaints  []v1.Taint        `json:"registerWithTaints"`
	// The kubelet API the kubernetes plugin serves, with kubelet's
	// settings of the same names: Address and Port it listens on (port 0
	// picks a free one), its serving certificate TLSCertFile and
	// TLSPrivateKeyFile ("": self-signed kubelet.crt and kubelet.key in
	// CertDir), and ClientCAFile, the CAs of client certificates
	// (kubelet's authentication.x509.clientCAFile; "": the CA of the
	// kubeconfig).
	Address           string `json:"address"`
	Port              int    `json:"port"`
	TLSCertFile       string `json:"tlsCertFile"`
	TLSPrivateKeyFile string `json:"tlsPrivateKeyFile"`
	ClientCAFile      string `json:"clientCAFile"`
	// ContainerLogMaxSize (a quantity: "10Mi"; "0": never) and
	// ContainerLogMaxFiles (at least 2, the live file included) rotate
	// each container's log, as kubelet's settings of the same names.
	ContainerLogMaxSize  string `json:"containerLogMaxSize"`
	ContainerLogMaxFiles int    `json:"containerLogMaxFiles"`
	// FailSwapOn refuses to start on a host with swap on, as kubelet's
	// setting of the same name.
	FailSwapOn bool `json:"failSwapOn"`
	// SwapBehavior is kubelet's memorySwap.swapBehavior: "NoSwap" (or "")
	// keeps every container out of swap, "LimitedSwap" lets containers of
	// Burstable pods swap in proportion to their memory requests (cgroup
	// v2 only).
	SwapBehavior string `json:"swapBehavior"`
	// ReadOnlyPort serves kubelet's unauthenticated read-only API on
	// Address over plain HTTP; 0 serves none.
	ReadOnlyPort int `json:"readOnlyPort"`
	// HealthzBindAddress and HealthzPort serve /healthz, as kubelet's
	// settings of the same names; port 0 serves none.
	HealthzBindAddress string `json:"healthzBindAddress"`
	HealthzPort        int    `json:"healthzPort"`
	// MaxPods is the most pods the node runs (the Node's pods capacity).
	MaxPods int `json:"maxPods"`
	// ResolvConf is the node's resolver configuration that pods' DNS
	// starts from ("": none); ClusterDNS and ClusterDomain are the
	// cluster's, for ClusterFirst pods. kubelet's settings of the same
	// names.
	ResolvConf    string   `json:"resolvConf"`
	ClusterDNS    []string `json:"clusterDNS"`
	ClusterDomain string   `json:"clusterDomain"`
	// MaxParallelImagePulls bounds the image pulls in flight; 0: no bound
	// (berth's default), 1: kubelet's serializeImagePulls.
	MaxParallelImagePulls int `json:"maxParallelImagePulls"`
	// MaxContainerRestartPeriod caps the restart back-off, as kubelet's
	// crashLoopBackOff.maxContainerRestartPeriod (1s to 300s).
	MaxContainerRestartPeriod Duration `json:"maxContainerRestartPeriod"`
	// The eviction thresholds and their settings, kubelet's of the same
	// names: maps of signal to "100Mi" or "10%" (or a grace period).
	EvictionHard                     map[string]string `json:"evictionHard"`
	EvictionSoft                     map[string]string `json:"evictionSoft"`
	EvictionSoftGracePeriod          map[string]string `json:"evictionSoftGracePeriod"`
	EvictionMinimumReclaim           map[string]string `json:"evictionMinimumReclaim"`
	EvictionMaxPodGracePeriod        int64             `json:"evictionMaxPodGracePeriod"`
	EvictionPressureTransitionPeriod Duration          `json:"evictionPressureTransitionPeriod"`
	// ShutdownGracePeriod (0: no graceful node shutdown) and
	// ShutdownGracePeriodCriticalPods, the part of it kept for critical
	// pods: kubelet's settings of the same names.
	ShutdownGracePeriod             Duration `json:"shutdownGracePeriod"`
	ShutdownGracePeriodCriticalPods Duration `json:"shutdownGracePeriodCriticalPods"`
	// StaticPodURL, StaticPodURLHeader and HTTPCheckFrequency are
	// kubelet's settings of the same names for the url plugin.
	StaticPodURL       string              `json:"staticPodURL"`
	StaticPodURLHeader map[string][]string `json:"staticPodURLHeader"`
	HTTPCheckFrequency Duration            `json:"httpCheckFrequency"`

	// NRISocket is where NRI plugins connect ("" turns NRI off);
	// NRIPluginPath holds plugins berthd starts itself, configured from
	// NRIPluginConfigPath.
	NRISocket           string `json:"nriSocket"`
	NRIPluginPath       string `json:"nriPluginPath"`
	NRIPluginConfigPath string `json:"nriPluginConfigPath"`
	// NRIRequestTimeout bounds each plugin call.
	NRIRequestTimeout Duration `json:"nriRequestTimeout"`
}

// DefaultRegistryConfig is where berthd looks for a registry configuration.
const DefaultRegistryConfig = "/etc/berth/registries.yaml"

// Duration is a time.Duration written as a string like "2m" in files.
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"2m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Default returns the defaults. Helper binaries are looked up next to the
// running berthd first (bin/ after `make`), then in ../lib/berth (after
// `make install`), then in the usual system places.
func Default() Config {
	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		exeDir = filepath.Dir(exe)
	}
	return Config{
		CRISocket:    "/run/berth/berth.sock",
		Root:         "/var/lib/berth",
		State:        "/run/berth",
		RuncBinary:   findBinary(exeDir, "runc"),
		ShimBinary:   findBinary(exeDir, "berth-shim"),
		PauseBinary:  findBinary(exeDir, "berth-pause"),
		ExecBinary:   findBinary(exeDir, "berth-exec"),
		CNIBinDirs:   cniBinDirs(exeDir),
		CNIConfDir:   "/etc/cni/net.d",
		CgroupDriver: "", // ResolveCgroupDriver picks it for the host
		LogLevel:     "info",

		RegistryConfig:              DefaultRegistryConfig,
		ImageGCHighThresholdPercent: 85,
		ImageGCLowThresholdPercent:  80,
		ImageMinimumGCAge:           Duration{2 * time.Minute},
		StreamingAddress:            "127.0.0.1:0",

		StaticPodPath: "/etc/berth/manifests",
		PodLogsDir:    "/var/log/pods",
		CgroupRoot:    "kubepods",

		HTTPCheckFrequency:   Duration{20 * time.Second},
		FailSwapOn:           true,
		ContainerLogMaxSize:  "10Mi",
		ContainerLogMaxFiles: 5,
		Address:              "0.0.0.0",
		Port:                 10250,
		HealthzBindAddress:   "127.0.0.1",
		HealthzPort:          10248,
		MaxPods:              110,
		ResolvConf:           "/etc/resolv.conf",

		MaxContainerRestartPeriod: Duration{300 * time.Second},

		EvictionHard:                     eviction.DefaultHard(),
		EvictionPressureTransitionPeriod: Duration{5 * time.Minute},

		NRIPluginPath:       "/opt/nri/plugins",
		NRIPluginConfigPath: "/etc/nri/conf.d",
		NRIRequestTimeout:   Duration{5 * time.Second},
	}
}

// UpstreamPlugin is the plugin berthd runs: Upstream, or its default.
func (c Config) UpstreamPlugin() string {
	switch {
	case c.Upstream != "":
		return c.Upstream
	case c.StaticPodURL != "":
		return "url"
	case c.Kubeconfig != "" || c.BootstrapKubeconfig != "":
		return "kubernetes"
	}
	return "none"
}

// ParseNodeLabels reads kubelet's --node-labels, "key=value,key=value".
func ParseNodeLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("node label %q: want key=value", kv)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("node label %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("node label %q value %q: %s", k, v, strings.Join(errs, "; "))
		}
		out[k] = v
	}
	return out, nil
}

// ParseTaints reads kubelet's --register-with-taints,
// "key=value:Effect,key:Effect".
func ParseTaints(s string) ([]v1.Taint, error) {
	var out []v1.Taint
	for spec := range strings.SplitSeq(s, ",") {
		kv, effect, ok := strings.Cut(spec, ":")
		if !ok {
			return nil, fmt.Errorf("taint %q: want key[=value]:Effect", spec)
		}
		switch e := v1.TaintEffect(effect); e {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("taint %q: effect %q must be NoSchedule, PreferNoSchedule or NoExecute", spec, effect)
		}
		k, v, _ := strings.Cut(kv, "=")
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("taint %q: key: %s", spec, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("taint %q: value: %s", spec, strings.Join(errs, "; "))
		}
		out = append(out, v1.Taint{Key: k, Value: v, Effect: v1.TaintEffect(effect)})
	}
	return out, nil
}

// ParseURLHeader reads kubelet's --manifest-url-header syntax,
// "key:value,key:value" (a key given twice has two values), into h.
func ParseURLHeader(h map[string][]string, s string) error {
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("manifest URL header %q: want key:value", kv)
		}
		k = http.CanonicalHeaderKey(strings.TrimSpace(k))
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	return nil
}

func findBinary(exeDir, name string) string {
	candidates := []string{}
	if exeDir != "" {
		candidates = append(candidates, filepath.Join(exeDir, name), filepath.Join(exeDir, "..", "lib", "berth", name))
	}
	candidates = append(candidates, filepath.Join("/usr/local/lib/berth", name), filepath.Join("/usr/lib/berth", name))
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return filepath.Clean(c)
		}
	}
	return name
}

func cniBinDirs(exeDir string) []string {
	var dirs []string
	if exeDir != "" {
		if fi, err := os.Stat(filepath.Join(exeDir, "cni")); err == nil && fi.IsDir() {
			dirs = append(dirs, filepath.Join(exeDir, "cni"))
		}
	}
	return append(dirs, "/opt/cni/bin")
}

// LogMaxBytes is ContainerLogMaxSize in bytes.
func (c Config) LogMaxBytes() (int64, error) {
	q, err := resource.ParseQuantity(c.ContainerLogMaxSize)
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("config: containerLogMaxSize %q must be a size like 10Mi", c.ContainerLogMaxSize)
	}
	return q.Value(), nil
}

// Eviction is the eviction settings, to be parsed by the eviction manager.
func (c Config) Eviction() eviction.Settings {
	return eviction.Settings{Hard: c.EvictionHard, Soft: c.EvictionSoft, SoftGracePeriod: c.EvictionSoftGracePeriod,
		MinimumReclaim: c.EvictionMinimumReclaim, MaxPodGracePeriod: c.EvictionMaxPodGracePeriod,
		PressureTransitionPeriod: c.EvictionPressureTransitionPeriod.Duration}
}

// ResolveCgroupDriver settles the cgroup driver for a host that systemd
// runs (as PID 1) or not. Unset, it is systemd's where systemd runs: the
// tree is systemd's there, and slices made through it are the
// arrangement systemd expects of other managers. The systemd driver on a
// host without systemd cannot work and is refused; cgroupfs under
// systemd works, with two managers of one tree, and is warned about.
func (c *Config) ResolveCgroupDriver(systemdRunning bool) (warning string, err error) {
	switch {
	case c.CgroupDriver == "" && systemdRunning:
		c.CgroupDriver = "systemd"
	case c.CgroupDriver == "":
		c.CgroupDriver = "cgroupfs"
	case c.CgroupDriver == "systemd" && !systemdRunning:
		return "", fmt.Errorf("config: cgroupDriver systemd, but systemd does not run this host (no /run/systemd/system), " +
			"so nothing can make the pods' slices: use cgroupDriver cgroupfs (--cgroup-driver=cgroupfs), or leave it unset")
	case c.CgroupDriver == "cgroupfs" && systemdRunning:
		return "cgroupDriver cgroupfs on a host systemd runs: the pods' cgroups are made behind systemd's back; " +
			"the systemd driver (the default here) makes them through systemd", nil
	}
	return "", nil
}

// Validate checks c; warnings are problems berthd can run with.
func (c Config) Validate() (warnings []string, err error) {
	for name, p := range map[string]string{"criSocket": c.CRISocket, "root": c.Root, "state": c.State, "cniConfDir": c.CNIConfDir} {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("config: %s %q must be an absolute path", name, p)
		}
	}
	if _, _, err := net.SplitHostPort(c.StreamingAddress); err != nil {
		return nil, fmt.Errorf("config: streamingAddress %q must be host:port: %v", c.StreamingAddress, err)
	}
	if c.CgroupDriver != "" && c.CgroupDriver != "cgroupfs" && c.CgroupDriver != "systemd" {
		return nil, fmt.Errorf("config: cgroupDriver %q must be cgroupfs or systemd", c.CgroupDriver)
	}
	if c.NodeName != "" {
		if errs := validation.IsDNS1123Subdomain(strings.ToLower(c.NodeName)); len(errs) > 0 {
			return nil, fmt.Errorf("config: nodeName %q: %s", c.NodeName, strings.Join(errs, "; "))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("config: logLevel %q must be debug, info, warn or error", c.LogLevel)
	}
	for name, p := range map[string]string{"runcBinary": c.RuncBinary, "shimBinary": c.ShimBinary, "pauseBinary": c.PauseBinary} {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("config: %s %q not found (run `make`, or give its absolute path)", name, p)
		}
	}
	if c.ExecBinary != "" && !filepath.IsAbs(c.ExecBinary) {
		return nil, fmt.Errorf("config: execBinary %q not found (run `make`, give its absolute path, or \"\" for runc)", c.ExecBinary)
	}
	switch up := c.UpstreamPlugin(); {
	case up == "url" && c.StaticPodURL == "":
		return nil, fmt.Errorf("config: upstream \"url\" needs staticPodURL (--manifest-url)")
	case up == "none" && c.StaticPodURL != "":
		return nil, fmt.Errorf("config: staticPodURL %q is set but upstream is \"none\" (use upstream \"url\")", c.StaticPodURL)
	case up == "kubernetes" && c.Kubeconfig == "":
		return nil, fmt.Errorf("config: upstream \"kubernetes\" needs kubeconfig (--kubeconfig; with --bootstrap-kubeconfig, where berth writes it)")
	case up != "url" && up != "none" && up != "kubernetes":
		return nil, fmt.Errorf("config: upstream %q must be none, url or kubernetes", c.Upstream)
	case up != "kubernetes" && c.Kubeconfig != "":
		return nil, fmt.Errorf("config: kubeconfig %q is set but upstream is %q (use upstream \"kubernetes\")", c.Kubeconfig, up)
	}
	if c.NodeIP != "" && net.ParseIP(c.NodeIP) == nil {
		return nil, fmt.Errorf("config: nodeIP %q is not an IP address", c.NodeIP)
	}
	if net.ParseIP(c.Address) == nil {
		return nil, fmt.Errorf("config: address %q is not an IP address", c.Address)
	}
	for name, p := range map[string]int{"port": c.Port, "readOnlyPort": c.ReadOnlyPort, "healthzPort": c.HealthzPort} {
		if p < 0 || p > 65535 {
			return nil, fmt.Errorf("config: %s %d must be from 0 to 65535", name, p)
		}
	}
	if !slices.Contains([]string{"", "NoSwap", "LimitedSwap"}, c.SwapBehavior) {
		return nil, fmt.Errorf("config: swapBehavior %q must be NoSwap or LimitedSwap", c.SwapBehavior)
	}
	if c.HealthzPort != 0 && net.ParseIP(c.HealthzBindAddress) == nil {
		return nil, fmt.Errorf("config: healthzBindAddress %q is not an IP address", c.HealthzBindAddress)
	}
	if c.MaxPods < 1 || c.MaxPods > 10000 {
		return nil, fmt.Errorf("config: maxPods %d must be from 1 to 10000", c.MaxPods)
	}
	for _, ip := range c.ClusterDNS {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("config: clusterDNS %q is not an IP address", ip)
		}
	}
	if c.ClusterDomain != "" {
		if errs := validation.IsDNS1123Subdomain(strings.TrimSuffix(c.ClusterDomain, ".")); len(errs) > 0 {
			return nil, fmt.Errorf("config: clusterDomain %q: %s", c.ClusterDomain, strings.Join(errs, "; "))
		}
	}
	if c.ResolvConf != "" && !filepath.IsAbs(c.ResolvConf) {
		return nil, fmt.Errorf("config: resolvConf %q must be an absolute path (or \"\" for none)", c.ResolvConf)
	}
	if c.MaxParallelImagePulls < 0 {
		return nil, fmt.Errorf("config: maxParallelImagePulls %d must not be negative (0: no bound)", c.MaxParallelImagePulls)
	}
	if d := c.MaxContainerRestartPeriod.Duration; d < time.Second || d > 300*time.Second {
		return nil, fmt.Errorf("config: maxContainerRestartPeriod %v must be from 1s to 300s", d)
	}
	if _, err := c.LogMaxBytes(); err != nil {
		return nil, err
	}
	if g, cg := c.ShutdownGracePeriod.Duration, c.ShutdownGracePeriodCriticalPods.Duration; g < 0 || cg < 0 || cg > g {
		return nil, fmt.Errorf("config: shutdownGracePeriodCriticalPods %s must be from 0 to shutdownGracePeriod %s", cg, g)
	}
	_, w, err := c.Eviction().Parse()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	warnings = append(warnings, w...)
	if c.ContainerLogMaxFiles < 2 {
		return nil, fmt.Errorf("config: containerLogMaxFiles %d must be at least 2 (the live file and one rotated)", c.ContainerLogMaxFiles)
	}
	if (c.TLSCertFile == "") != (c.TLSPrivateKeyFile == "") {
		return nil, fmt.Errorf("config: tlsCertFile %q and tlsPrivateKeyFile %q go together", c.TLSCertFile, c.TLSPrivateKeyFile)
	}
	if c.UpstreamPlugin() == "url" && c.HTTPCheckFrequency.Duration < time.Second {
		return nil, fmt.Errorf("config: httpCheckFrequency %v must be at least 1s", c.HTTPCheckFrequency.Duration)
	}
	found := false
	for _, d := range c.CNIBinDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			found = true
		}
	}
	if !found {
		warnings = append(warnings, fmt.Sprintf("no CNI plugins found in %v: pods that need a network will fail", c.CNIBinDirs))
	}
	return warnings, nil
}
