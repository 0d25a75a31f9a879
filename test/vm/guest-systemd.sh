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
main_running() { [ -n "$(cri ps -q --name main --state running)" ]; }
wait_for 180 main_running
id=$(cri ps -q --name main --state running 2>/dev/null | head -1)
say container "${id:-none}"
pid=$(cri inspect -o go-template --template '{{.info.pid}}' "$id" 2>/dev/null)
say pid "${pid:-none}"
say pod_cgroup "$(cut -d: -f3 /proc/$pid/cgroup 2>/dev/null)"
# The pod's shim is in a scope of its own, out of berth.service.
say shim_scope "$(systemctl show -p ActiveState --value "berth-shim-$(cri pods -q --name web | head -1).scope")"

systemctl restart berth
say restart $?
say active_after_restart "$(systemctl is-active berth)"
wait_for 60 main_running
id2=$(cri ps -q --name main --state running 2>/dev/null | head -1)
say container_after_restart "${id2:-none}"
say pid_after_restart "$(cri inspect -o go-template --template '{{.info.pid}}' "$id2" 2>/dev/null)"

# kill -9 of berthd, and systemd's restart (Restart=always): a container
# that exits meanwhile keeps its exit code, one that logs meanwhile loses
# no line.
mkdir -p /gate
cp $S/counter.yaml $S/quitter.yaml /etc/berth/manifests/
# web's, counter's (also named main) and quitter's
three_running() { [ -n "$(cri ps -q --name quitter --state running)" ] && [ "$(cri ps -q --state running | wc -l)" -ge 3 ]; }
wait_for 180 three_running
counter_log() { ls /var/log/pods/default_counter-*/main/0.log 2>/dev/null | head -1; }
lines() { wc -l 2>/dev/null <"$(counter_log)" || echo 0; }
more_lines() { [ "$(lines)" -gt "$1" ]; }
wait_for 60 more_lines 5 # the counter has lines before the kill
systemctl kill -s KILL berth
touch /gate/go # the quitter exits 7 now, with berthd dead
restarted() { [ "$(systemctl show -p NRestarts --value berth)" -ge 1 ] && [ "$(systemctl is-active berth)" = active ]; }
wait_for 120 restarted
say restarts "$(systemctl show -p NRestarts --value berth)"
say active_after_kill "$(systemctl is-active berth)"
quitter_exited() { [ -n "$(cri ps -aq --name quitter --state exited)" ]; }
wait_for 60 quitter_exited
q=$(cri ps -aq --name quitter --state exited 2>/dev/null | head -1)
say quitter_exit "$(cri inspect -o go-template --template '{{.status.exitCode}}' "$q" 2>&1)"
wait_for 60 more_lines $(($(lines) + 5)) # and lines after the restart
log=$(counter_log)
say counter_lines "$(awk '{print $4}' "$log" | awk 'NR != $1 {bad = NR} END {print (bad ? "gap at " bad : "ok") " " NR}')"

systemctl stop berth
say stop $?
say active_after_stop "$(systemctl is-active berth)"
kill -0 "$pid" 2>/dev/null && say alive_after_stop yes || say alive_after_stop no

journalctl -u berth --no-pager -o short-monotonic >$S/journal.txt 2>&1
say done yes
