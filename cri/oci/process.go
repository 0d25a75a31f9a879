package oci

import (
	"path"
	"slices"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultPath is PATH when the image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processArgs applies Kubernetes' rules: a command replaces the image's
// Entrypoint and drops its Cmd; args replace the image's Cmd.
func processArgs(cfg *runtimeapi.ContainerConfig, image v1.Config) ([]string, error) {
	command, args := cfg.GetCommand(), cfg.GetArgs()
	if len(command) == 0 {
		command = image.Entrypoint
		if len(args) == 0 {
			args = image.Cmd
		}
	}
	out := slices.Concat(command, args)
	if len(out) == 0 || out[0] == "" {
		return nil, errdefs.InvalidArgument("no command specified: neither the request's command/args nor the image's Entrypoint/Cmd")
	}
	return out, nil
}

// env is an ordered environment where a later value for a key replaces the
// earlier one in place.
type env []string

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

func (e env) set(kv string) env {
	k := envKey(kv)
	if i := slices.IndexFunc(e, func(x string) bool { return envKey(x) == k }); i >= 0 {
		e[i] = kv
		return e
	}
	return append(e, kv)
}

func (e env) has(key string) bool {
	return slices.ContainsFunc(e, func(x string) bool { return envKey(x) == key })
}

// processEnv layers PATH (when the image has none), HOSTNAME, the image's
// environment and the request's, and HOME from the user's passwd entry
// (or "/") when nothing set it.
func processEnv(cfg *runtimeapi.ContainerConfig, image v1.Config, hostname, home string) ([]string, error) {
	var e env
	if hostname != "" {
		e = e.set("HOSTNAME=" + hostname)
	}
	for _, kv := range image.Env {
		if envKey(kv) != "" {
			e = e.set(kv)
		}
	}
	if cfg.GetTty() {
		e = e.set("TERM=xterm") // as containerd and CRI-O give a terminal; the request may say otherwise
	}
	for i, kv := range cfg.GetEnvs() {
		k := kv.GetKey()
		if k == "" || strings.Contains(k, "=") {
			return nil, errdefs.InvalidArgument("envs[%d].key: %q is not a valid variable name", i, k)
		}
		e = e.set(k + "=" + string(kv.GetValue()))
	}
	if !e.has("PATH") {
		e = append(env{defaultPath}, e...)
	}
	if !e.has("HOME") {
		if home == "" {
			home = "/"
		}
		e = e.set("HOME=" + home)
	}
	return e, nil
}

// workingDir: the request's, else the image's, else "/".
func workingDir(cfg *runtimeapi.ContainerConfig, image v1.Config) (string, error) {
	if wd := cfg.GetWorkingDir(); wd != "" {
		if !path.IsAbs(wd) {
			return "", errdefs.InvalidArgument("working_dir: %q is not an absolute path", wd)
		}
		return path.Clean(wd), nil
	}
	if wd := image.WorkingDir; wd != "" {
		return path.Join("/", wd), nil
	}
	return "/", nil
}
