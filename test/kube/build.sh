#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl (or, with
# the argument kubelet, the kubelet that make bench runs beside berth) from
# the separate module in test/kube/tools into a cache directory outside the
# repo, keyed by that module's go.mod + go.sum, and prints the directory on
# the last stdout line. A warm cache makes this a no-op; everything else
# goes to stderr.
set -euo pipefail

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/tools" && pwd)"
key="$(cat "$tools/go.mod" "$tools/go.sum" | sha256sum | cut -c1-16)"
root="${BERTH_TEST_CACHE:-/var/cache/berth-test}"
what="${1:-control-plane}"
case "$what" in
control-plane)
	dir="$root/kube-$key"
	bins=(etcd kube-apiserver kube-controller-manager kubectl)
	;;
kubelet)
	dir="$root/kubelet-$key"
	bins=(kubelet)
	;;
*)
	echo "build.sh: unknown argument $what (control-plane or kubelet)" >&2
	exit 2
	;;
esac

complete() {
	for b in "${bins[@]}"; do [ -x "$1/$b" ] || return 1; done
}

if ! complete "$dir"; then
	mkdir -p "$root"
	# Build beside the final directory (same filesystem) so the rename that
	# publishes it is atomic; an interrupted build leaves only the temp dir,
	# which the trap removes.
	tmp="$(mktemp -d "$root/.$what-$key.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	echo "building ${bins[*]} into $dir (takes a while when cold)" >&2
	export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"
	(
		cd "$tools"
		# Stamp the release version as an official build does, so the
		# apiserver and kubectl report v1.37.x instead of v0.0.0-master.
		v="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
		minor="${v#v*.}"
		minor="${minor%%.*}"
		ld="-s -w"
		for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
		done
		flags=(-trimpath "-ldflags=$ld")
		if [ "$what" = kubelet ]; then
			go build "${flags[@]}" -o "$tmp/" k8s.io/kubernetes/cmd/kubelet
			exit
		fi
		go build "${flags[@]}" -o "$tmp/" \
			k8s.io/kubernetes/cmd/kube-apiserver \
			k8s.io/kubernetes/cmd/kube-controller-manager \
			k8s.io/kubernetes/cmd/kubectl
		# go would name this one "server" after its module path.
		go build "${flags[@]}" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
	)
	complete "$tmp"
	chmod 0755 "$tmp"
	rm -rf "$dir" # a partial directory never passes complete(); replace it
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		# Lost a race with a concurrent build; its result is as good.
		complete "$dir"
	fi
fi
echo "$dir"
