# Sourced by the guest scripts: say records a finding (a key=value line of
# /mnt/share/result, which the test reads); then berth is installed as
# `make install` lays it out, from the read-only share of the repository's
# bin/, with the repository's unit and default network.
res=/mnt/share/result
: >"$res"
say() { echo "$1=$2" >>"$res"; echo "$1=$2"; }
cri() { crictl --timeout 20s "$@"; }
# wait_for tries "$@" once a second for up to $1 seconds until it succeeds.
wait_for() {
	n=$1
	shift
	for _ in $(seq 1 "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 1
	done
	return 1
}
mkdir -p /mnt/bin && mount -t 9p -o trans=virtio,version=9p2000.L,ro bin /mnt/bin
install -d /usr/local/bin /usr/local/lib/berth /opt/cni/bin /etc/cni/net.d /etc/berth/manifests
install -m 0755 /mnt/bin/berthd /mnt/bin/berthctl /mnt/bin/crictl /usr/local/bin/
install -m 0755 /mnt/bin/berth-shim /mnt/bin/berth-pause /mnt/bin/berth-exec /mnt/bin/runc /usr/local/lib/berth/
install -m 0755 /mnt/bin/cni/* /opt/cni/bin/
install -m 0644 /mnt/share/10-berth.conflist /etc/cni/net.d/
install -m 0644 /mnt/share/berth.service /etc/systemd/system/berth.service
printf 'runtime-endpoint: unix:///run/berth/berth.sock\nimage-endpoint: unix:///run/berth/berth.sock\n' >/etc/crictl.yaml
systemctl daemon-reload
