package kube

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-project/berth/pkg/upstream"
)

// TestObjectsFromJournal: configMaps, secrets and tokens read before a
// restart serve the node's pods while the API server cannot be reached.
func TestObjectsFromJournal(t *testing.T) {
	root := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	before := newWithClient(Config{Root: root, Clock: clk}, nil)
	before.vols.objects["configMap/ns/cfg"] = cachedObject{Data: map[string][]byte{"mode": []byte("fast")}, Binary: map[string][]byte{"blob": {0, 1}}}
	before.vols.objects["secret/ns/gone"] = cachedObject{Missing: true}
	before.vols.tokens["u1/default//3600"] = cachedToken{Token: "tok", Refresh: clk.Now(), Expires: clk.Now().Add(time.Hour)}
	if err := before.vols.save(); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(root, "upstream", "kubernetes-objects.json")
	if fi, err := os.Stat(journal); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal %v %v: want mode 0600", fi, err)
	}

	// Nothing listens on port 1 of loopback: every request fails.
	client, err := newAPIClient(&rest.Config{Host: "https://127.0.0.1:1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := newWithClient(Config{Root: root, Clock: clk}, client)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}}
	ctx := context.Background()
	data, err := p.ObjectData(ctx, pod, upstream.ConfigMap, "cfg")
	if err != nil || string(data["mode"]) != "fast" || data["blob"] != nil {
		t.Errorf("configMap env data %q, %v: want the journalled string data only", data, err)
	}
	files, err := p.VolumeFiles(ctx, pod, v1.VolumeProjection{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}})
	if err != nil || len(files) != 2 || files[0].Path != "blob" || files[1].Path != "mode" {
		t.Errorf("configMap volume %+v, %v: want blob and mode", files, err)
	}
	if data, err := p.ObjectData(ctx, pod, upstream.Secret, "gone"); err != nil || data != nil {
		t.Errorf("a secret known missing: %q, %v", data, err)
	}
	if _, err := p.ObjectData(ctx, pod, upstream.Secret, "never-seen"); err == nil {
		t.Error("a secret never read is served while the API server is unreachable")
	}
	files, err = p.VolumeFiles(ctx, pod, v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}})
	if err != nil || len(files) != 1 || string(files[0].Data) != "tok" {
		t.Errorf("token %+v, %v: want the journalled token while it is valid", files, err)
	}
	clk.Step(2 * time.Hour)
	if _, err := p.VolumeFiles(ctx, pod, v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}); err == nil {
		t.Error("an expired token is served")
	}

	// Pods gone from the node take their tokens out of the journal; objects
	// not used for ten minutes go too.
	clk.Step(11 * time.Minute)
	p.forgetVolumes(nil)
	after := newWithClient(Config{Root: root, Clock: clk}, nil)
	if len(after.vols.tokens) != 0 || len(after.vols.objects) != 0 {
		t.Errorf("journal after pruning: %d tokens, %d objects", len(after.vols.tokens), len(after.vols.objects))
	}
}
