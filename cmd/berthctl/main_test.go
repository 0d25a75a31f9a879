package main

import (
	"io"
	"strings"
	"testing"
)

// TestCommandLine: every command answers --help without an error, and a
// bad command, argument count or output format is an error naming it.
func TestCommandLine(t *testing.T) {
	run := func(args ...string) error {
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		return root.Execute()
	}
	for _, args := range [][]string{
		{"--help"}, {"pods", "--help"}, {"logs", "--help"}, {"describe", "pod", "--help"}, {"manifests", "--help"}, {"status", "--help"}, {"validate", "--help"},
		{"images", "--help"}, {"images", "list", "--help"}, {"images", "import", "--help"}, {"images", "export", "--help"}, {"completion", "bash"},
	} {
		if err := run(args...); err != nil {
			t.Errorf("berthctl %s: %v", strings.Join(args, " "), err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pods", "-o", "yml"}, `unknown output format "yml"`},
		{[]string{"manifests", "--output", "wide"}, `unknown output format "wide"`},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"images", "import"}, "accepts 1 arg(s), received 0"},
		{[]string{"images", "export", "busybox"}, `"output" not set`},
		{[]string{"validate"}, "requires at least 1 arg(s)"},
		{[]string{"logs"}, "accepts 1 arg(s), received 0"},
	} {
		if err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("berthctl %s: %v, want an error with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
