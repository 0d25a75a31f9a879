#!/bin/sh
# Runs inside the VM (as /mnt/share/guest.sh, by the image's vm-test unit):
# installs berth as `make install` lays it out, with the repository's unit,
# and drives it through systemd. Each finding is a key=value line in
# /mnt/share/result; TestSystemdUnit reads them.
set -u
S=/mnt/share
. $S/install.sh

say cgroupfs "$(stat -fc %T /sys/fs/cgroup)"
say systemd "$(systemctl --version | head -1 | cut -d' ' -f2)"
say verify "$(systemd-analyze verify /etc/systemd/system/berth.service >/dev/null 2>&1 && echo ok || echo failed)"

# Type=notify: start returns once berthd said READY=1, which it says once
# its CRI socket serves and the agent has taken in its pods.
systemctl start berth
say start $?
say active "$(systemctl is-active berth)"
cri version >/dev/null 2>&1
say cri_when_active $?
say status_line "$(systemctl show -p StatusText --value berth)"

berthctl images import $S/busybox.tar >/dev/null
say import $?
cp $S/pod.yaml /etc/berth/manifests/
id=""
for _ in $(seq 1 180); do
	id=$(cri ps -q --name main --state running 2>/dev/null | head -1)
	[ -n "$id" ] && break
	sleep 1
done
say container "${id:-none}"
pid=$(cri inspect -o go-template --template '{{.info.pid}}' "$id" 2>/dev/null)
say pid "${pid:-none}"
say pod_cgroup "$(cut -d: -f3 /proc/$pid/cgroup 2>/dev/null)"

systemctl restart berth
say restart $?
say active_after_restart "$(systemctl is-active berth)"
id2=""
for _ in $(seq 1 60); do
	id2=$(cri ps -q --name main --state running 2>/dev/null | head -1)
	[ -n "$id2" ] && break
	sleep 1
done
say container_after_restart "${id2:-none}"
say pid_after_restart "$(cri inspect -o go-template --template '{{.info.pid}}' "$id2" 2>/dev/null)"

systemctl stop berth
say stop $?
say active_after_stop "$(systemctl is-active berth)"
kill -0 "$pid" 2>/dev/null && say alive_after_stop yes || say alive_after_stop no

journalctl -u berth --no-pager -o short-monotonic >$S/journal.txt 2>&1
say done yes
