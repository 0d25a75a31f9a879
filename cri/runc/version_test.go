package runc

import "testing"

func TestParseVersion(t *testing.T) {
	got := parseVersion("runc version 1.5.2\ncommit: v1.5.2-0-gabcdef\nspec: 1.3.0\ngo: go1.26.8\nlibseccomp: 2.5.4\n")
	want := Version{Version: "1.5.2", Commit: "v1.5.2-0-gabcdef", Spec: "1.3.0"}
	if got != want {
		t.Errorf("parseVersion = %+v, want %+v", got, want)
	}
	if got := parseVersion("garbage"); got != (Version{}) {
		t.Errorf("parseVersion(garbage) = %+v, want zero", got)
	}
}
