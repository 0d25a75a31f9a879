package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxDBSize bounds how much of an image's /etc/passwd or /etc/group is read:
// the rootfs is untrusted and the file could be huge.
const maxDBSize = 16 << 20

// processUser is who the container's first process runs as.
type processUser struct {
	uid, gid   uint32
	additional []uint32
	home       string // "" when no passwd entry was found
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolveUser decides the container's user from the security context and,
// when it sets none, the image's USER. Names are looked up in the rootfs's
// /etc/passwd and /etc/group, opened so that no symlink in the image can
// lead outside the rootfs.
func resolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (processUser, error) {
	const field = "linux.security_context"
	userSpec, groupSpec, _ := strings.Cut(imageUser, ":")
	groupExplicit := groupSpec != ""
	switch {
	case sc.GetRunAsUser() != nil && sc.GetRunAsUsername() != "":
		return processUser{}, errdefs.InvalidArgument(
			"%s: run_as_user and run_as_username are mutually exclusive", field)
	case sc.GetRunAsUser() != nil:
		v := sc.GetRunAsUser().GetValue()
		if v < 0 || v > math.MaxUint32 {
			return processUser{}, errdefs.InvalidArgument("%s.run_as_user: %d is out of range", field, v)
		}
		userSpec, groupSpec, groupExplicit = strconv.FormatInt(v, 10), "", false
	case sc.GetRunAsUsername() != "":
		userSpec, groupSpec, groupExplicit = sc.GetRunAsUsername(), "", false
	}
	// The CRI says run_as_group without a user MUST be an error; kubelet
	// always sends the image's user along with a pod's runAsGroup.
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return processUser{}, errdefs.InvalidArgument("%s.run_as_group is set without run_as_user or run_as_username", field)
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if g.GetValue() < 0 || g.GetValue() > math.MaxUint32 {
			return processUser{}, errdefs.InvalidArgument("%s.run_as_group: %d is out of range", field, g.GetValue())
		}
		groupSpec, groupExplicit = strconv.FormatInt(g.GetValue(), 10), true
	}

	users, err := readPasswd(rootfs)
	if err != nil {
		return processUser{}, err
	}
	var pu processUser
	var entry *passwdEntry
	if userSpec == "" {
		userSpec = "0"
	}
	if uid, err := strconv.ParseUint(userSpec, 10, 32); err == nil {
		pu.uid = uint32(uid)
		entry = findUser(users, func(e *passwdEntry) bool { return e.uid == pu.uid })
	} else {
		entry = findUser(users, func(e *passwdEntry) bool { return e.name == userSpec })
		if entry == nil {
			return processUser{}, errdefs.InvalidArgument(
				"user %q (from %s) not found in the image's /etc/passwd", userSpec, userSource(sc))
		}
		pu.uid = entry.uid
	}
	if entry != nil {
		pu.gid, pu.home = entry.gid, entry.home
	}

	var groups []groupEntry
	needGroups := groupSpec != "" && !isNumeric(groupSpec) ||
		entry != nil && sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict
	if needGroups {
		if groups, err = readGroup(rootfs); err != nil {
			return processUser{}, err
		}
	}
	if groupExplicit {
		if gid, err := strconv.ParseUint(groupSpec, 10, 32); err == nil {
			pu.gid = uint32(gid)
		} else {
			i := slices.IndexFunc(groups, func(g groupEntry) bool { return g.name == groupSpec })
			if i < 0 {
				return processUser{}, errdefs.InvalidArgument(
					"group %q (from the image's USER) not found in the image's /etc/group", groupSpec)
			}
			pu.gid = groups[i].gid
		}
	}
	// Merge policy: the groups /etc/group lists the user in, then the
	// requested ones. Strict: only the requested ones.
	if entry != nil && sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		for _, g := range groups {
			if slices.Contains(g.members, entry.name) {
				pu.additional = appendGID(pu.additional, pu.gid, g.gid)
			}
		}
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > math.MaxUint32 {
			return processUser{}, errdefs.InvalidArgument("%s.supplemental_groups[%d]: %d is out of range", field, i, g)
		}
		pu.additional = appendGID(pu.additional, pu.gid, uint32(g))
	}
	return pu, nil
}

func userSource(sc *runtimeapi.LinuxContainerSecurityContext) string {
	if sc.GetRunAsUsername() != "" {
		return "linux.security_context.run_as_username"
	}
	return "the image's USER"
}

func appendGID(list []uint32, primary, gid uint32) []uint32 {
	if gid == primary || slices.Contains(list, gid) {
		return list
	}
	return append(list, gid)
}

func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func findUser(users []passwdEntry, match func(*passwdEntry) bool) *passwdEntry {
	for i := range users {
		if match(&users[i]) {
			return &users[i]
		}
	}
	return nil
}

// readPasswd parses <rootfs>/etc/passwd; a missing file means no entries.
func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readDB(rootfs, "/etc/passwd", func(fields []string) {
		if len(fields) < 4 {
			return
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil || fields[0] == "" {
			return
		}
		e := passwdEntry{name: fields[0], uid: uint32(uid), gid: uint32(gid)}
		if len(fields) > 5 {
			e.home = fields[5]
		}
		out = append(out, e)
	})
	return out, err
}

// readGroup parses <rootfs>/etc/group; a missing file means no entries.
func readGroup(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readDB(rootfs, "/etc/group", func(fields []string) {
		if len(fields) < 3 || fields[0] == "" {
			return
		}
		gid, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			return
		}
		e := groupEntry{name: fields[0], gid: uint32(gid)}
		if len(fields) > 3 && fields[3] != "" {
			for _, m := range strings.Split(fields[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}

// readDB calls fn with the colon-separated fields of each non-comment line of
// a file inside rootfs. The file is resolved as if rootfs were "/" (symlinks,
// absolute or not, cannot leave it) and must be a regular file: a FIFO or
// device planted by the image must not block or touch the host.
func readDB(rootfs, name string, fn func([]string)) error {
	f, err := openInRoot(rootfs, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errdefs.InvalidArgument("read %s from the image: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxDBSize))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return errdefs.InvalidArgument("read %s from the image: %w", name, err)
	}
	return nil
}

func openInRoot(rootfs, name string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(rootfs, name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}
