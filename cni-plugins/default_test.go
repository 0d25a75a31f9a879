package cniplugins

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// netConf is the part of the conflist the tests look at.
type netConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type         string          `json:"type"`
		Bridge       string          `json:"bridge"`
		IsGateway    bool            `json:"isGateway"`
		IPMasq       bool            `json:"ipMasq"`
		HairpinMode  bool            `json:"hairpinMode"`
		PromiscMode  *bool           `json:"promiscMode"`
		Capabilities map[string]bool `json:"capabilities"`
		IPAM         *struct {
			Type    string                `json:"type"`
			DataDir string                `json:"dataDir"`
			Ranges  [][]map[string]string `json:"ranges"`
			Routes  []map[string]string   `json:"routes"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func parse(t *testing.T, data []byte) netConf {
	t.Helper()
	if _, err := libcni.NetworkConfFromBytes(data); err != nil {
		t.Fatalf("libcni rejects the conflist: %v\n%s", err, data)
	}
	var c netConf
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("parse conflist: %v", err)
	}
	return c
}

func TestDefaultConflist(t *testing.T) {
	onDisk, err := os.ReadFile(ConflistName)
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(DefaultConflist()) {
		t.Fatal("embedded conflist differs from the file")
	}
	c := parse(t, DefaultConflist())
	if c.CNIVersion != "1.0.0" || c.Name != "berth" || len(c.Plugins) != 2 {
		t.Fatalf("unexpected header: %+v", c)
	}
	br, pm := c.Plugins[0], c.Plugins[1]
	if br.Type != "bridge" || br.Bridge != "berth0" || !br.IsGateway || !br.IPMasq || !br.HairpinMode {
		t.Errorf("bridge plugin: %+v", br)
	}
	if br.PromiscMode != nil {
		t.Error("promiscMode set: the bridge plugin refuses it together with hairpinMode")
	}
	if br.IPAM == nil || br.IPAM.Type != "host-local" ||
		!reflect.DeepEqual(br.IPAM.Ranges, [][]map[string]string{{{"subnet": "10.88.0.0/16"}}}) ||
		!reflect.DeepEqual(br.IPAM.Routes, []map[string]string{{"dst": "0.0.0.0/0"}}) {
		t.Errorf("ipam: %+v", br.IPAM)
	}
	if pm.Type != "portmap" || !pm.Capabilities["portMappings"] {
		t.Errorf("portmap plugin: %+v", pm)
	}
}

func TestConflistOptions(t *testing.T) {
	data, err := Conflist(Options{
		Name:    "test-net",
		Bridge:  "bt0123abcd",
		Subnets: []string{"10.23.45.7/24", "fd00:1::/64"},
		DataDir: "/tmp/leases",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, data)
	br := c.Plugins[0]
	if c.Name != "test-net" || br.Bridge != "bt0123abcd" || br.IPAM.DataDir != "/tmp/leases" {
		t.Errorf("substitutions missing: %s", data)
	}
	wantRanges := [][]map[string]string{{{"subnet": "10.23.45.0/24"}}, {{"subnet": "fd00:1::/64"}}}
	if !reflect.DeepEqual(br.IPAM.Ranges, wantRanges) {
		t.Errorf("ranges = %v, want %v", br.IPAM.Ranges, wantRanges)
	}
	wantRoutes := []map[string]string{{"dst": "0.0.0.0/0"}, {"dst": "::/0"}}
	if !reflect.DeepEqual(br.IPAM.Routes, wantRoutes) {
		t.Errorf("routes = %v, want %v", br.IPAM.Routes, wantRoutes)
	}
	// Everything not substituted is kept.
	if !br.IsGateway || !br.IPMasq || !br.HairpinMode || c.Plugins[1].Type != "portmap" {
		t.Errorf("template fields lost: %s", data)
	}

	// Zero options give the template back (modulo formatting).
	same, err := Conflist(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parse(t, same), parse(t, DefaultConflist())) {
		t.Errorf("zero options changed the template: %s", same)
	}
}

func TestConflistRejects(t *testing.T) {
	for name, opts := range map[string]Options{
		"bad subnet":        {Subnets: []string{"10.0.0.0/33"}},
		"not a cidr":        {Subnets: []string{"10.0.0.1"}},
		"two ipv4 subnets":  {Subnets: []string{"10.1.0.0/16", "10.2.0.0/16"}},
		"long bridge":       {Bridge: "abcdefghijklmnop"},
		"slash in bridge":   {Bridge: "a/b"},
		"bad network name":  {Name: "bad name"},
		"leading dash name": {Name: "-net"},
	} {
		if _, err := Conflist(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
