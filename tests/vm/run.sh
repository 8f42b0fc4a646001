#!/bin/bash
# Boot Debian's cloud kernel in qemu (TCG) with a busybox initramfs holding
# the given programs, run tests/vm/init-tests.sh inside on a pure cgroup v2
# host (every controller, PSI on), and pass its result back through the
# serial console:  tests/vm/run.sh OUT_DIR [PROGRAM...]
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR [PROGRAM...]}; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1)
[ -n "$kernel" ] || { echo "vmtest: no /boot/vmlinuz-*-cloud-amd64 (make deps installs linux-image-cloud-amd64)"; exit 1; }
rm -rf "$out/root" && mkdir -p "$out/root"/{bin,sbin,proc,sys,dev,tmp,run,tests,lib,lib64}
cp /bin/busybox "$out/root/bin/busybox"
for app in $(/bin/busybox --list); do [ "$app" = busybox ] || ln -sf busybox "$out/root/bin/$app"; done
# our programs and the shared libraries they link
for p in "$@"; do
	cp "$p" "$out/root/tests/"
	for lib in $(ldd "$p" 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*'); do
		mkdir -p "$out/root$(dirname "$lib")"
		cp -L "$lib" "$out/root$lib"
	done
done
cp "$root/tests/vm/init-tests.sh" "$root/tests/vm/container-tests.sh" "$out/root/tests/"
# busybox bundles for `moonshim run` on a pure v2 host: one rootfs, a config
# per case (the VM has no jq); configs are written by container-configs.sh
if command -v runc >/dev/null && command -v jq >/dev/null; then
	bash "$root/tests/container/mkbundle.sh" "$out/root/bundle" -- sh
	bash "$root/tests/container/mkbundle.sh" "$out/root/ubundle" --userns -- sh
	bash "$root/tests/vm/container-configs.sh" "$out/root/bundle" "$out/root/ubundle"
fi
# pivot_root cannot leave the initramfs: stage 1 copies it to a tmpfs and
# switches root there, as a real host's root is a mount
cat > "$out/root/init" <<'INIT'
#!/bin/busybox sh
if [ ! -e /.stage2 ]; then
	mkdir -p /newroot && mount -t tmpfs -o size=512m root /newroot
	for d in /*; do [ "$d" = /newroot ] || [ "$d" = /proc ] || cp -a "$d" /newroot/; done
	mkdir -p /newroot/proc && touch /newroot/.stage2
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
sh /tests/init-tests.sh
echo "VMTEST-EXIT $?"
poweroff -f
INIT
chmod +x "$out/root/init" "$out/root/tests/init-tests.sh"
(cd "$out/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.gz"
log="$out/serial.log"
timeout 300 qemu-system-x86_64 -machine accel=tcg -cpu max -smp 2 -m 1024 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$out/initramfs.gz" \
	-append "console=ttyS0 quiet panic=-1 psi=1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
	> "$log" 2>&1 || true
tr -d '\r' < "$log" | grep -v '^\[' | sed -n '/VMTEST-BEGIN/,/VMTEST-EXIT/p'
code=$(tr -d '\r' < "$log" | sed -n 's/^VMTEST-EXIT \([0-9]*\).*/\1/p' | tail -1)
[ -n "$code" ] || { echo "vmtest: the VM gave no result; last console lines:"; tail -20 "$log"; exit 1; }
exit "$code"
