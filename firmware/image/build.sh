#!/bin/sh
# Builds the Relais SD image for the Raspberry Pi 3, 4, 5 and Zero 2 W (arm64) from Debian
# bookworm packages and the relais-agent package, without mounting anything:
#   1. mmdebstrap makes the root file system in a directory (arm64 maintainer scripts run through
#      qemu-user-static and binfmt_misc), with rootfs/ copied over it;
#   2. raspi-firmware's kernel hook, run again once rootfs/etc/default/raspi-firmware* is there,
#      fills /boot/firmware: firmware, kernel, initrd, device trees, config.txt and cmdline.txt;
#   3. mkfs.vfat + mcopy make the FAT partition from /boot/firmware, mkfs.ext4 -d the root
#      partition from the rest, and sfdisk writes the MBR partition table of the image file.
# Usage: build.sh IMAGE AGENT_DEB   (as root; make image runs it). See firmware/README.md.
set -eu

image=$1
deb=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
mirror=${RELAIS_MIRROR:-http://deb.debian.org/debian}
security=${RELAIS_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# The date of every file that has none of its own, and of the file systems (reproducible builds).
: "${SOURCE_DATE_EPOCH:=$(date +%s)}"
export SOURCE_DATE_EPOCH
# Partitions: 4 MiB before the first (alignment), 256 MiB of FAT, the root file system with room
# to spare; relais-growroot grows it to the card's size on the first boot.
fat_mib=256
offset_mib=4

[ "$(id -u)" -eq 0 ] || { echo "build.sh: run as root (mmdebstrap --mode=root)" >&2; exit 1; }
for tool in mmdebstrap sfdisk mkfs.vfat mcopy mkfs.ext4; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool missing: apt-get install mmdebstrap fdisk dosfstools mtools e2fsprogs" >&2; exit 1; }
done
if [ "$(dpkg --print-architecture)" != arm64 ] && ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	echo "build.sh: arm64 programs cannot run here: apt-get install qemu-user-static binfmt-support," >&2
	echo "  then mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && update-binfmts --enable qemu-aarch64" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/relais-image.XXXXXX")
# mmdebstrap --mode=root mounts /proc, /sys and /dev in the root while it runs: never remove
# the directory while anything is still mounted there.
trap 'grep -q " $work/" /proc/mounts || rm -rf "$work"' EXIT
root=$work/root

packages="systemd-sysv,udev,kmod,initramfs-tools,zstd,linux-image-arm64,raspi-firmware,firmware-brcm80211,wireless-regdb"
packages="$packages,iproute2,netbase,systemd-resolved,systemd-timesyncd,openssh-server,ca-certificates"
packages="$packages,hostapd,ipp-usb,sane-utils,sane-airscan,cloud-guest-utils,fdisk,e2fsprogs,dosfstools"

# Documentation, man pages and translations other than French are left out (copyright files
# stay); so are the kernel modules of hardware no Raspberry Pi has.
nice -n 19 mmdebstrap --mode=root --variant=minbase --architectures=arm64 \
	--components=main,non-free-firmware \
	--include="$packages" \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/fr*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/amd/*' \
	--dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/nouveau/*' \
	--dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/drm/radeon/*' \
	--dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/infiniband/*' \
	--dpkgopt='path-exclude=/usr/lib/modules/*/kernel/sound/*' \
	--setup-hook='mkdir -p "$1/boot/firmware"' \
	--customize-hook="copy-in '$deb' /tmp" \
	--customize-hook='chroot "$1" sh -c "dpkg --install /tmp/relais-agent_*.deb && rm /tmp/relais-agent_*.deb"' \
	--customize-hook="sync-in '$here/rootfs' /" \
	--customize-hook='chroot "$1" systemctl enable systemd-networkd.service systemd-resolved.service relais-ssh-keygen.service relais-growroot.service' \
	--customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
	--customize-hook='DEB_MAINT_PARAMS=configure chroot "$1" /etc/kernel/postinst.d/z50-raspi-firmware' \
	--customize-hook='ls -la "$1/boot/firmware"' \
	"$suite" "$root" \
	"deb $mirror $suite main non-free-firmware" \
	"deb $mirror $suite-updates main non-free-firmware" \
	"deb $security $suite-security main non-free-firmware"

# The FAT partition, from /boot/firmware.
fat=$work/fat.img
rm -f "$fat"
mkfs.vfat -F 32 -n RASPIFIRM -i 52454c53 --invariant -C "$fat" $((fat_mib * 1024)) >/dev/null
mcopy -s -p -m -i "$fat" "$root"/boot/firmware/* ::/
find "$root/boot/firmware" -mindepth 1 -delete

# The root partition: what the files take, a third more for the spool and updates.
used_mib=$(du -s -m "$root" | cut -f1)
root_mib=$((used_mib + used_mib / 3 + 64))
ext=$work/root.img
rm -f "$ext"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -L RASPIROOT -U 7e1a1500-0000-4000-8000-000000000001 \
	-E root_owner=0:0,hash_seed=7e1a1500-0000-4000-8000-000000000002 \
	-d "$root" "$ext" "${root_mib}M"

# The image: MBR, FAT (bootable, type 0x0c), Linux.
total_mib=$((offset_mib + fat_mib + root_mib))
tmp=$image.tmp
rm -f "$tmp"
truncate -s "${total_mib}M" "$tmp"
sfdisk --quiet "$tmp" <<EOF
label: dos
label-id: 0x52454c53
start=${offset_mib}MiB, size=${fat_mib}MiB, type=c, bootable
start=$((offset_mib + fat_mib))MiB, size=${root_mib}MiB, type=83
EOF
dd if="$fat" of="$tmp" bs=1M seek="$offset_mib" conv=notrunc,sparse status=none
dd if="$ext" of="$tmp" bs=1M seek=$((offset_mib + fat_mib)) conv=notrunc,sparse status=none
mv "$tmp" "$image"
echo "$image: $total_mib MiB (FAT $fat_mib MiB, root $root_mib MiB, $used_mib MiB used)"
