#!/bin/sh
# Runs inside the VM (as /mnt/share/guest.sh): critest, cri-tools'
# conformance suite, against berth under systemd on cgroup v2, with the
# images it pulls served from the guest's loopback (the share's registry
# program) and berth mirroring their registries there. Its JUnit report
# goes to the share, which TestCritest reads.
set -u
S=/mnt/share
. $S/install.sh

install -d /etc/berth
cp $S/registries.yaml /etc/berth/registries.yaml
# shellcheck disable=SC2046 # one word per image
$S/registry 127.0.0.1:5000 $(cat $S/images) >$S/registry.log 2>&1 &
ready() { grep -q '^ready$' $S/registry.log; }
wait_for 120 ready
say registry $?
systemctl start berth
say start $?
cd /tmp
PATH=$S:$PATH timeout 1200 $S/critest --parallel=4 --runtime-endpoint unix:///run/berth/berth.sock \
	--ginkgo.focus="$(cat $S/focus)" \
	--ginkgo.junit-report=$S/critest.xml --ginkgo.no-color >$S/critest.log 2>&1
say critest $?
systemctl stop berth
journalctl -u berth --no-pager -o short-monotonic >$S/journal.txt 2>&1
say done yes
