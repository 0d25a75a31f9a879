#!/bin/sh
# clean.sh undoes `make run` (`make run-clean`): it stops and removes the
# pods berthd runs, then removes what berthd and the example wrote: its
# state and records (images included), the pods' logs and cgroups, the
# default pod network berthd wrote (10-berth.conflist), its bridge and
# IP leases. It refuses while berthd serves, and on a host where berth
# runs as a service: that berth uses the same directories.
#
# The pods go the way the agent removes pods no longer wanted (preStop
# hooks, grace periods, logs, volumes, cgroups, CNI DEL): berthd is
# started once more with an empty manifest directory and stopped once
# nothing is left. The directories can be overridden for a berthd run
# with other flags: BERTH_ROOT, BERTH_STATE, BERTH_LOGS, BERTH_CNI_CONF,
# BERTH_CGROUP_ROOT; BERTH_BIN is where berthd and berthctl are.
set -eu

bin=${BERTH_BIN:-$(dirname "$0")/../bin}
root=${BERTH_ROOT:-/var/lib/berth}
state=${BERTH_STATE:-/run/berth}
logs=${BERTH_LOGS:-/var/log/pods}
cniconf=${BERTH_CNI_CONF:-/etc/cni/net.d}
cgroot=${BERTH_CGROUP_ROOT:-kubepods}
socket=$state/berth.sock

for b in berthd berthctl crictl; do
	[ -x "$bin/$b" ] || { echo "$bin/$b missing: make run-clean cleans up after make run, which builds it" >&2; exit 1; }
done

if [ "$root" = /var/lib/berth ] && systemctl is-active --quiet berth 2>/dev/null; then
	echo "berth runs as a service on this host and uses these directories: stop it first (systemctl stop berth), or clean up by hand" >&2
	exit 1
fi
if [ -S "$socket" ] && "$bin/crictl" --runtime-endpoint "unix://$socket" --timeout 2s version >/dev/null 2>&1; then
	echo "berthd is serving on $socket: stop it first (Ctrl-C in make run)" >&2
	exit 1
fi

if [ -d "$root" ]; then
	empty=$(mktemp -d)
	log=$(mktemp)
	trap 'rm -rf "$empty" "$log"' EXIT
	"$bin/berthd" --root "$root" --state "$state" --cri-socket "$socket" --api-socket "$state/api.sock" \
		--pod-logs-dir "$logs" --cni-conf-dir "$cniconf" --cgroup-root "$cgroot" \
		--pod-manifest-path "$empty" --fail-swap-on=false --healthz-port 0 --eviction-hard "" >"$log" 2>&1 &
	pid=$!
	gone=false
	for _ in $(seq 1 120); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "berthd exited; its log:" >&2
			cat "$log" >&2
			exit 1
		fi
		# Done when the runtime has no sandbox left and the agent has
		# finished (logs, volumes, cgroups) every pod it began to remove.
		sandboxes=$("$bin/crictl" --runtime-endpoint "unix://$socket" --timeout 5s pods -q 2>/dev/null) || sandboxes=unknown
		began=$(grep -c 'msg="pod no longer wanted' "$log" || true)
		removed=$(grep -c 'msg="pod removed"' "$log" || true)
		if [ -z "$sandboxes" ] && [ "$removed" -ge "$began" ] && grep -q 'msg="agent running"' "$log"; then
			gone=true
			break
		fi
		sleep 0.5
	done
	kill "$pid"
	wait "$pid" || true
	if ! $gone; then
		echo "pods still there after 60 s; berthd's log:" >&2
		cat "$log" >&2
		exit 1
	fi
	echo "stopped and removed the pods"
fi

rm -rf "$root" "$state"
echo "removed $root and $state"

conf=$cniconf/10-berth.conflist
if [ -f "$conf" ]; then
	# What berthd wrote names its bridge and, optionally, the leases' directory.
	bridge=$(sed -n 's/.*"bridge": *"\([^"]*\)".*/\1/p' "$conf" | head -1)
	network=$(sed -n 's/.*"name": *"\([^"]*\)".*/\1/p' "$conf" | head -1)
	leases=$(sed -n 's/.*"dataDir": *"\([^"]*\)".*/\1/p' "$conf" | head -1)
	rm -f "$conf"
	if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
		ip link del "$bridge"
		echo "removed the bridge $bridge"
	fi
	if [ -n "$network" ]; then
		rm -rf "${leases:-/var/lib/cni/networks}/$network"
	fi
	echo "removed $conf and the network's leases"
fi

# The pods' cgroups went with them; the QoS levels are removed when empty
# (rmdir never removes a cgroup that holds anything).
for dir in /sys/fs/cgroup/*/"$cgroot" /sys/fs/cgroup/"$cgroot"; do
	[ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
done
# The log directories, if nothing else wrote there.
rmdir "$logs" "$(dirname "$logs")/containers" 2>/dev/null || true
echo "the host is as it was before make run"
