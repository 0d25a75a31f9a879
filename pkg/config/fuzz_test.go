package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzLoadFile feeds arbitrary bytes to LoadFile as a configuration file.
// Errors and warnings name the file; loading a file twice is loading it
// once (each field it sets is set from the file alone); and what a file
// set, written back as berth's own JSON document, loads to the same
// configuration: every field survives its own encoding.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\n" +
			"cgroupDriver: systemd\ncgroupRoot: /\nimageMinimumGCAge: 5m\nport: 10251\nmaxPods: 50\nclusterDNS: [10.96.0.10]\n" +
			"authentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n  webhook:\n    enabled: true\n" +
			"authorization:\n  mode: Webhook\nregisterWithTaints:\n- {key: dedicated, value: edge, effect: NoSchedule}\n" +
			"serializeImagePulls: false\nmaxParallelImagePulls: 3\ncrashLoopBackOff:\n  maxContainerRestartPeriod: 30s\n" +
			"mergeDefaultEvictionSettings: true\nevictionHard: {memory.available: 500Mi}\nevictionSoft: {nodefs.available: 20%}\n" +
			"evictionSoftGracePeriod: {nodefs.available: 1m}\ncpuManagerPolicy: static\n" +
			"---\napiVersion: berth.dev/v1alpha1\nkind: BerthConfiguration\nroot: /srv/berth\nlogLevel: debug\n",
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserializeImagePulls: true\nmaxParallelImagePulls: 4\n",
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication: {anonymous: {enabled: true}}\n",
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: many\n",
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard:\n  memory.available: lots\n",
		"root: /srv/berth\nnodeLabels: {zone: a}\nstaticPodURLHeader: {X-Token: [a, b]}\nshutdownGracePeriod: 30s\n---\ncgroupDrvier: systemd\n",
		`{"root": "/x", "maxContainerRestartPeriod": "1m", "evictionHard": {"memory.available": "1Gi"}}`,
		"apiVersion: v1\nkind: Pod\n",
		"",
	} {
		f.Add([]byte(s))
	}
	if def, err := json.Marshal(Default()); err == nil {
		f.Add(def)
	}

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.yaml")
		writeFuzzInput(t, path, data)
		c := Default()
		warnings, err := c.LoadFile(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config "+path) {
				t.Fatalf("error %q does not start with the file", err)
			}
			return
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, "config "+path) {
				t.Errorf("warning %q does not start with the file", w)
			}
		}
		c.Validate() // must not panic whatever the file said

		twice := Default()
		for range 2 {
			if _, err := twice.LoadFile(path); err != nil {
				t.Fatalf("the file loaded once, not twice: %v", err)
			}
		}
		once := Default()
		once.LoadFile(path)
		if !reflect.DeepEqual(once, twice) {
			t.Errorf("loaded twice:\n%+v\nloaded once:\n%+v", twice, once)
		}

		// Into an empty Config, so that no default survives in a map the
		// JSON does not replace.
		dump, err := json.Marshal(once)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		writeFuzzInput(t, path, dump)
		var back Config
		if _, err := back.LoadFile(path); err != nil {
			t.Fatalf("the configuration, written back, is refused: %v\n%s", err, dump)
		}
		if again, _ := json.Marshal(back); string(again) != string(dump) {
			t.Errorf("written back and loaded again:\n%s\nwas:\n%s", again, dump)
		}
	})
}

func writeFuzzInput(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
