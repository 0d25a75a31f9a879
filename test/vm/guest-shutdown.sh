#!/bin/sh
# Runs inside the VM: berth with shutdownGracePeriod, two pods (a regular
# one, a critical one) that note when they get SIGTERM on the root disk,
# then a restart of berth (which must stop nothing) and a poweroff
# through logind. TestGracefulNodeShutdown reads what the pods and
# berthd's journal left on the disk.
set -u
S=/mnt/share
. $S/install.sh

mkdir -p /var/lib/results
cat >/etc/berth/kubelet.yaml <<'C'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
shutdownGracePeriod: 30s
shutdownGracePeriodCriticalPods: 10s
C
echo 'BERTH_EXTRA_ARGS="--config /etc/berth/kubelet.yaml"' >/etc/default/berth
# Keeps berthd's journal on the disk when the shutdown begins: stopped
# before berth.service, once berth has released its inhibitor lock.
cat >/etc/systemd/system/keep-journal.service <<'U'
[Unit]
After=berth.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'journalctl -u berth --no-pager -o short-monotonic >/var/lib/results/journal.txt; sync'
[Install]
WantedBy=multi-user.target
U
systemctl daemon-reload
systemctl start keep-journal
systemctl start berth
say start $?
berthctl images import $S/busybox.tar >/dev/null
say import $?
cp $S/regular.yaml $S/critical.yaml /etc/berth/manifests/
n=0
for _ in $(seq 1 180); do
	n=$(cri ps -q --state running 2>/dev/null | wc -l)
	[ "$n" -ge 2 ] && break
	sleep 1
done
say running "$n"
say inhibitor "$(busctl get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager InhibitDelayMaxUSec 2>&1)"

# A restart is no shutdown: had it stopped the pods, they would note it
# twice (once now, once at the poweroff, after the agent restarted them).
systemctl restart berth
say restart $?
say running_after_restart "$(cri ps -q --state running 2>/dev/null | wc -l)"
say stopped_by_restart "$(cat /var/lib/results/order 2>/dev/null | tr '\n' ' ')"
say done yes
sync
systemctl poweroff
sleep 600
