#!/usr/bin/env bash
# image.sh builds, once, the VM the systemd lane boots: a minimal Debian 12
# made with debootstrap from the host's apt sources, with systemd on the
# unified cgroup v2 hierarchy, what berth's pods need (iptables, iproute2,
# kmod, libseccomp2 for runc) and a oneshot unit that runs the test's
# /mnt/share/guest.sh from a 9p share and powers off. It is cached outside
# the repository, in $BERTH_TEST_CACHE (default /var/cache/berth-test)
# under vm-<hash of what goes into it>, and prints that directory last.
# Installs qemu-system-x86 and debootstrap if missing. As root.
set -euo pipefail
cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}
packages=systemd,systemd-sysv,linux-image-amd64,udev,dbus,kmod,iproute2,iptables,libseccomp2,procps
# The guest's side: run the test's guest.sh from the 9p share, power off.
vmtest='#!/bin/sh
# Runs the test'"'"'s guest.sh from the 9p share, then powers off.
mkdir -p /mnt/share && mount -t 9p -o trans=virtio,version=9p2000.L share /mnt/share
if [ -x /mnt/share/guest.sh ]; then
	/mnt/share/guest.sh >/mnt/share/guest.log 2>&1
	echo "guest.sh exit $?" >>/mnt/share/guest.log
fi
sync
systemctl poweroff'
unit='[Unit]
Description=berth VM test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vm-test
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target'
# The image is what these make (revision: the rest of this script); a
# change to them builds a new one.
revision=1
key=$(printf '%s\n%s\n%s\n%s\n' "$revision" "$packages" "$vmtest" "$unit" | sha256sum | cut -c1-12)
out=$cache/vm-$key
if [ -f "$out/ready" ]; then
	echo "$out"
	exit 0
fi
missing=""
for p in qemu-system-x86 debootstrap; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "installing:$missing" >&2
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && /debian/ {print $2; exit}' /etc/apt/sources.list)
tmp=$out.tmp
if [ ! -f "$tmp/debootstrapped" ]; then # an interrupted build starts again from here
	rm -rf "$tmp"
	mkdir -p "$tmp"
	echo "debootstrap of Debian 12 into $tmp (a few minutes, once)" >&2
	debootstrap --variant=minbase \
		--include="$packages" \
		bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
	touch "$tmp/debootstrapped"
fi
root=$tmp/root
printf '%s\n' "$vmtest" >"$root/usr/local/sbin/vm-test"
chmod +x "$root/usr/local/sbin/vm-test"
printf '%s\n' "$unit" >"$root/etc/systemd/system/vm-test.service"
ln -sf /etc/systemd/system/vm-test.service "$root/etc/systemd/system/multi-user.target.wants/vm-test.service"
echo berth-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost berth-vm\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
cp "$root"/boot/vmlinuz-* "$tmp/vmlinuz"
cp "$root"/boot/initrd.img-* "$tmp/initrd.img"
touch "$tmp/ready"
rm -rf "$out"
mv "$tmp" "$out"
echo "$out"
