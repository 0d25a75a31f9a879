// Command vuln checks berth's code against the Go vulnerability database,
// offline: the database is built once from the golang.org/x/vulndb module
// (its OSV files, indexed by its own indexdb command) into a cache outside
// the repository, and govulncheck reads it from there. It fails on a
// vulnerability the code calls in a module berth requires (go get the
// fixed version); one in the standard library is reported with the Go
// release that fixes it and fails only with -stdlib, since the Go
// release berth builds with is the machine's.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Pinned, so that a run is reproducible; bump them together.
const (
	vulndb      = "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018"
	govulncheck = "golang.org/x/vuln/cmd/govulncheck@v1.9.0"
)

type finding struct {
	OSV          string `json:"osv"`
	FixedVersion string `json:"fixed_version"`
	Trace        []struct {
		Module, Version, Package, Function string
	} `json:"trace"`
}

func main() {
	cache := flag.String("cache", "/var/cache/berth-test", "where the database is kept")
	stdlib := flag.Bool("stdlib", false, "fail on standard library vulnerabilities too")
	flag.Parse()
	if err := run(*cache, *stdlib); err != nil {
		fmt.Fprintln(os.Stderr, "vuln:", err)
		os.Exit(1)
	}
}

func run(cache string, failStdlib bool) error {
	db := filepath.Join(cache, "vulndb-"+vulndb[strings.LastIndex(vulndb, "-")+1:])
	if _, err := os.Stat(filepath.Join(db, "index", "db.json")); err != nil {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return err
		}
		if err := build(db); err != nil {
			return fmt.Errorf("build the vulnerability database: %w", err)
		}
	}
	cmd := goCmd("run", govulncheck, "-db", "file://"+db, "-format", "json", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	called := map[string]finding{}
	dec := json.NewDecoder(bufio.NewReader(out))
	for {
		var msg struct {
			Finding *finding `json:"finding"`
		}
		if err := dec.Decode(&msg); err != nil {
			break
		}
		if f := msg.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			called[f.OSV] = *f
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("govulncheck: %w", err)
	}
	ids := make([]string, 0, len(called))
	for id := range called {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	failed := 0
	for _, id := range ids {
		f := called[id]
		t := f.Trace[0]
		where := fmt.Sprintf("%s@%s, fixed in %s", t.Module, t.Version, f.FixedVersion)
		if t.Module == "stdlib" {
			where = fmt.Sprintf("the standard library (%s), fixed in Go %s", t.Version, strings.TrimPrefix(f.FixedVersion, "v"))
			if !failStdlib {
				fmt.Printf("warning: %s in %s, called by %s\n", id, where, t.Function)
				continue
			}
		}
		fmt.Printf("%s in %s, called by %s.%s\n", id, where, t.Package, t.Function)
		failed++
	}
	if failed > 0 {
		return fmt.Errorf("%d vulnerabilities called (details: go run %s -db file://%s ./...)", failed, govulncheck, db)
	}
	fmt.Printf("vuln: no vulnerability called in the modules berth requires (%d in the standard library)\n", len(ids))
	return nil
}

// build writes the v1 database govulncheck reads, from the OSV files of
// the vulndb module the Go module proxy serves.
func build(db string) error {
	out, err := goCmd("mod", "download", "-json", vulndb).Output()
	if err != nil {
		return fmt.Errorf("go mod download %s: %w", vulndb, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return err
	}
	tmp := db + ".tmp"
	os.RemoveAll(tmp)
	index := goCmd("run", "golang.org/x/vulndb/cmd/indexdb@"+strings.SplitN(vulndb, "@", 2)[1],
		"-vulns", filepath.Join(mod.Dir, "data", "osv"), "-out", tmp)
	index.Stdout, index.Stderr = os.Stderr, os.Stderr
	if err := index.Run(); err != nil {
		return fmt.Errorf("indexdb: %w", err)
	}
	return os.Rename(tmp, db)
}

// goCmd runs the go command outside berth's module settings, so that the
// tools resolve their own dependencies.
func goCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	return cmd
}
