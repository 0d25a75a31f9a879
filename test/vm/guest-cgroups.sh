#!/bin/sh
# Runs inside the VM (as /mnt/share/guest.sh): berth under systemd on
# cgroup v2 with each cgroup driver in turn, first systemd's (the default
# on a host systemd runs), then cgroupfs. For each it runs the pods of the
# share (limits.yaml, oom.yaml, podoom.yaml, userns.yaml) and records, as key=value
# lines prefixed with the driver, where their cgroups are and what the
# kernel's files say; the CRI's answers (crictl inspect, stats) go to
# <driver>-<what>.json files of the share, which TestCgroups parses.
set -u
S=/mnt/share
. $S/install.sh
cg=/sys/fs/cgroup

running() { [ -n "$(cri ps -q --name "$1" --state running 2>/dev/null)" ]; }
exited() { [ -n "$(cri ps -aq --name "$1" --state exited 2>/dev/null)" ]; }
no_pods() { [ -z "$(cri pods -q 2>/dev/null)" ]; }
absent() { [ ! -e "$1" ]; }

start() { # start berth with driver flags $1 ("" for the default)
	printf 'BERTH_EXTRA_ARGS="--read-only-port=10255 %s"\n' "$1" >/etc/default/berth
	systemctl start berth
}

drive() { # $1 names the run, $2 the flags
	d=$1
	start "$2"
	say ${d}_start $?
	say ${d}_driver "$(cri info -o go-template --template '{{.config.cgroupDriver}}' 2>&1)"
	berthctl images import $S/busybox.tar >/dev/null
	cp $S/limits.yaml $S/oom.yaml $S/podoom.yaml $S/userns.yaml /etc/berth/manifests/
	wait_for 180 running limits
	id=$(cri ps -q --name limits --state running | head -1)
	pid=$(cri inspect -o go-template --template '{{.info.pid}}' "$id")
	c=$(cut -d: -f3 /proc/$pid/cgroup)
	p=$(dirname "$c")
	say ${d}_container_cgroup "$c"
	for f in memory.max memory.swap.max cpu.max cpu.weight pids.max hugetlb.2MB.max; do
		say ${d}_container_$f "$(cat $cg$c/$f 2>&1)"
	done
	for f in memory.max cpu.max cpu.weight hugetlb.2MB.max; do
		say ${d}_pod_$f "$(cat $cg$p/$f 2>&1)"
	done
	say ${d}_qos_cpu.weight "$(cat $cg$(dirname "$p")/cpu.weight 2>&1)"
	# systemd knows the pod's slice and its limit (made through D-Bus),
	# and the container's scope.
	say ${d}_pod_unit_memory "$(systemctl show -p MemoryMax --value "$(basename "$p")" 2>&1)"
	say ${d}_container_unit "$(systemctl show -p ActiveState --value "$(basename "$c")" 2>&1)"
	# The container has a cgroup namespace of its own: it sees its cgroup as /.
	[ "$(readlink /proc/$pid/ns/cgroup)" != "$(readlink /proc/1/ns/cgroup)" ] && say ${d}_cgroupns own || say ${d}_cgroupns host
	say ${d}_cgroup_inside "$(cri exec "$id" cat /proc/self/cgroup 2>&1)"
	# Stats (the container counted to 20000 as it started: it has CPU to show).
	cri stats -o json --id "$id" >$S/$d-stats.json 2>&1
	cri statsp -o json --id "$(cri pods -q --name limits | head -1)" >$S/$d-statsp.json 2>&1
	# kubelet's read-only port, from inside the pod (the node is its gateway).
	cri exec "$id" wget -qO- http://10.88.0.1:10255/stats/summary >$S/$d-summary.json 2>&1
	cri exec "$id" wget -qO- http://10.88.0.1:10255/metrics/cadvisor >$S/$d-cadvisor.txt 2>&1
	cat $cg$c/memory.stat >$S/$d-memory.stat 2>&1
	cat $cg$c/memory.current >$S/$d-memory.current 2>&1
	say ${d}_psi "$(cat $cg$c/cpu.pressure 2>&1 | head -1)"
	wait_for 180 exited oom
	cri inspect "$(cri ps -aq --name oom | head -1)" >$S/$d-oom.json 2>&1
	wait_for 180 exited podoom
	cri inspect "$(cri ps -aq --name podoom | head -1)" >$S/$d-podoom.json 2>&1
	# hostUsers: false on this kernel: idmapped image layers and volumes.
	wait_for 180 running userns
	u=$(cri ps -q --name userns --state running | head -1)
	say ${d}_userns_map "$(cri exec "$u" cat /proc/self/uid_map 2>&1 | tr -s ' ' | sed 's/^ //')"
	say ${d}_userns_owners "$(cri exec "$u" stat -c %u:%g / /scratch /host 2>&1 | tr '\n' ' ')"
	cri exec "$u" touch /scratch/f /host/f
	say ${d}_userns_written "$(stat -c %u:%g /var/lib/userns-test/f 2>&1)"
	rm -rf /var/lib/userns-test
	# The pods go, and their cgroups with them.
	rm /etc/berth/manifests/*.yaml
	wait_for 180 no_pods
	say ${d}_pods_gone $?
	# The agent removes the pod's cgroup after its sandbox, so a moment
	# after the CRI has no pods left.
	wait_for 60 absent "$cg$p" && say ${d}_pod_cgroup_after gone || say ${d}_pod_cgroup_after present
	say ${d}_pod_unit_after "$(systemctl show -p ActiveState --value "$(basename "$p")" 2>&1)"
}

drive systemd ""
systemctl stop berth
drive cgroupfs "--cgroup-driver=cgroupfs"

# A driver that does not match the pods berth has is refused at start,
# naming both; so is the systemd driver where no systemd runs (that case
# is the unit test's: systemd runs here).
cp $S/limits.yaml /etc/berth/manifests/
wait_for 180 running limits
systemctl stop berth
start "--cgroup-driver=systemd"
say mismatch_start $?
systemctl stop berth
journalctl -u berth --no-pager -o cat | grep -m1 'were made with the cgroupfs driver' >$S/mismatch.txt
start "--cgroup-driver=cgroupfs"
say back_start $?
rm /etc/berth/manifests/*.yaml
wait_for 180 no_pods
systemctl stop berth

# Node pressure on v2: memory.available as kubelet computes it (MemTotal
# less the root cgroup's anon + file - inactive_file), a threshold 200 MiB
# below what is available now, and a pod that eats memory (in a Memory
# emptyDir, which its cgroup is charged for) evicted, the quiet one kept.
total=$(awk '$1 == "MemTotal:" {print $2 * 1024}' /proc/meminfo)
ws=$(awk '$1 == "anon" {a = $2} $1 == "file" {f = $2} $1 == "inactive_file" {i = $2} END {print a + f - i}' $cg/memory.stat)
avail=$(( (total - ws) / 1048576 ))
say evict_available_mi $avail
say evict_threshold_mi $((avail - 200))
start "--eviction-hard=memory.available<$((avail - 200))Mi --eviction-pressure-transition-period=30s"
say evict_start $?
cp $S/hog.yaml $S/quiet.yaml /etc/berth/manifests/
evicted() { berthctl pods -o json 2>/dev/null | grep -q '"reason": *"Evicted"'; }
wait_for 300 evicted
say evict_evicted $?
berthctl pods -o json >$S/evict-pods.json 2>&1
berthctl status >$S/evict-status.txt 2>&1
# NoSwap (the default): a container without a memory limit may not swap
# either.
q=$(cri ps -q --name quiet --state running | head -1)
say noswap_unlimited "$(cat $cg$(cut -d: -f3 /proc/$(cri inspect -o go-template --template '{{.info.pid}}' "$q")/cgroup)/memory.swap.max 2>&1)"
rm /etc/berth/manifests/*.yaml
wait_for 180 no_pods
systemctl stop berth

# LimitedSwap with swap on: the Burstable container may swap its memory
# request's share of the node's memory, times the swap; the BestEffort
# one none.
fallocate -l 256M /swapfile && chmod 600 /swapfile && mkswap -q /swapfile && swapon /swapfile
say swap_on $?
printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailSwapOn: false\nmemorySwap: {swapBehavior: LimitedSwap}\n' >/etc/berth/swap.yaml
start "--config=/etc/berth/swap.yaml"
say swap_start $?
say swap_memtotal "$(awk '$1 == "MemTotal:" {print $2 * 1024}' /proc/meminfo)"
say swap_swaptotal "$(awk '$1 == "SwapTotal:" {print $2 * 1024}' /proc/meminfo)"
cp $S/limits.yaml $S/quiet.yaml /etc/berth/manifests/
wait_for 180 running limits
wait_for 180 running quiet
for n in limits quiet; do
	i=$(cri ps -q --name $n --state running | head -1)
	say swap_$n "$(cat $cg$(cut -d: -f3 /proc/$(cri inspect -o go-template --template '{{.info.pid}}' "$i")/cgroup)/memory.swap.max 2>&1)"
done
rm /etc/berth/manifests/*.yaml
wait_for 180 no_pods
systemctl stop berth
swapoff /swapfile

journalctl -u berth --no-pager -o short-monotonic >$S/journal.txt 2>&1
say done yes
