# A QEMU guest running Debian 12's own kernel (linux-image-amd64: IPVS,
# 802.1Q, vfio and the rest as modules) over the host's root file system,
# shared read-only over 9p under a tmpfs overlay: the guest runs the host's
# binaries (rvsd, ipvsadm, keepalived) on a real kernel. TCG: this CPU's
# nested KVM fails; a boot takes about a minute. Used by scripts/pcilab
# (PCI NICs) and scripts/conformance (kernel IPVS as the reference).
#
# Source after common.sh. The caller sets W (its work directory, shared
# read-write with the guest at the same path) and may set GUEST_CACHE (where
# the kernel is unpacked, default /var/cache/rvs-pcilab), GUEST_NETNS (run
# QEMU in this namespace, for TAPs there), GUEST_TIMEOUT (boot, seconds,
# default 300) and GUEST_PRELUDE (bash lines run before every g command).
#
#   guest_kernel                  KROOT, KVER, KIMG: the unpacked kernel
#   guest_initrd                  $W/initrd.gz (busybox, virtio, 9p, overlay)
#   guest_boot NAME [QEMU ARGS]   boot (2 vCPUs, 3 GiB) with more devices
#   g SECS SCRIPT                 run SCRIPT (bash) in the guest, print its
#                                 output, return its status
#   guest_poweroff                power the guest off and wait for QEMU
#
# The guest's side: scripts/pcilab.d/init (the initramfs' /init) and
# scripts/pcilab.d/guest (the agent running g's commands).

GUEST_D=$RVS_ROOT/scripts/pcilab.d

# Debian's linux-image-amd64, unpacked into the cache with its modules
# (depmod run there), never installed on the host.
guest_kernel() {
    local cache=${GUEST_CACHE:-/var/cache/rvs-pcilab} pkg dir
    mkdir -p "$cache"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        apt-get update -qq || true
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    if [ -n "$pkg" ] && [ ! -f "$cache/$pkg/.done" ]; then
        echo "   fetching $pkg from the Debian archive into $cache"
        rm -rf "${cache:?}/$pkg" "${cache:?}/dl"
        mkdir -p "$cache/dl"
        chmod 0777 "$cache/dl"  # apt-get download runs as _apt where it can
        (cd "$cache/dl" && { apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed'; true; })
        if compgen -G "$cache/dl/$pkg"_*.deb >/dev/null; then
            dpkg -x "$cache/dl/$pkg"_*.deb "$cache/$pkg"
            KVER=$(basename "$(ls -d "$cache/$pkg"/lib/modules/*)")
            depmod -b "$cache/$pkg" "$KVER"
            touch "$cache/$pkg/.done"
            # Older kernels in the cache are no longer needed.
            find "$cache" -mindepth 1 -maxdepth 1 -name 'linux-image-*' ! -name "$pkg" -exec rm -rf {} +
        fi
        rm -rf "$cache/dl"
    fi
    if [ -z "$pkg" ] || [ ! -f "$cache/$pkg/.done" ]; then
        # No archive: the newest kernel already in the cache.
        dir=$(find "$cache" -mindepth 2 -maxdepth 2 -path "$cache/linux-image-*/.done" 2>/dev/null | sort -V | tail -1)
        [ -n "$dir" ] || { echo "guest: no kernel (apt-get download linux-image-amd64 failed)" >&2; return 1; }
        pkg=$(basename "$(dirname "$dir")")
    fi
    KROOT=$cache/$pkg
    KVER=$(basename "$(ls -d "$KROOT"/lib/modules/*)")
    KIMG=$KROOT/boot/vmlinuz-$KVER
    [ -f "$KIMG" ] || { echo "guest: no $KIMG" >&2; return 1; }
}

# The initramfs: static busybox, the modules for virtio and 9p, /init.
guest_initrd() {
    local d=$W/initrd m
    mkdir -p "$d/bin" "$d/mods"
    cp "$(command -v busybox)" "$d/bin/busybox"
    ldd "$d/bin/busybox" >/dev/null 2>&1 && { echo "guest: busybox must be static (busybox-static)" >&2; return 1; }
    cp "$GUEST_D/init" "$d/init"
    chmod 0755 "$d/init"
    : >"$d/mods/order"
    for m in $(modprobe -d "$KROOT" -S "$KVER" --show-depends -a virtio_pci 9pnet_virtio 9p overlay \
        | awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++'); do
        cp "$m" "$d/mods/"
        basename "$m" >>"$d/mods/order"
    done
    (cd "$d" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$W/initrd.gz"
}

# (kill -0 is true for a zombie; QEMU is our child until waited for.)
guest_alive() { [ -e "/proc/$GUEST_PID" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$GUEST_PID/status" 2>/dev/null; }

# guest_boot NAME [QEMU ARGS...]: boot the guest (q35, TCG, 2 vCPUs, 3 GiB,
# an IOMMU for vfio) with the root and work shares, plus the caller's
# devices; returns once the agent is up. GUEST_PID is QEMU's.
guest_boot() {
    local name=$1; shift
    local timeout=${GUEST_TIMEOUT:-300} up=0
    # shellcheck disable=SC2054  # commas inside QEMU's options
    local args=(
        -name "$name" -nodefaults -display none -no-reboot
        -accel tcg -cpu max -smp 2 -m 3G
        -machine q35,kernel-irqchip=split
        -device intel-iommu,intremap=on,caching-mode=on
        -kernel "$KIMG" -initrd "$W/initrd.gz"
        -append "console=ttyS0 rdinit=/init panic=-1 loglevel=4 intel_iommu=on iommu=pt rvs.work=$W rvs.agent=$GUEST_D/guest rvs.cmds=$W/g rvs.kver=$KVER rvs.kmods=$KROOT/lib/modules/$KVER"
        -serial "file:$W/console.log"
        -fsdev "local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap"
        -device "virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot,bus=pcie.0,addr=0x5"
        -fsdev "local,id=fswork,path=$W,security_model=none,multidevs=remap"
        -device "virtio-9p-pci,fsdev=fswork,mount_tag=work,bus=pcie.0,addr=0x6"
        "$@"
    )
    mkdir -p "$W/g"
    echo 0 >"$W/g/seq"
    if [ -n "${GUEST_NETNS:-}" ]; then
        ip netns exec "$GUEST_NETNS" qemu-system-x86_64 "${args[@]}" >"$W/qemu.log" 2>&1 &
    else
        qemu-system-x86_64 "${args[@]}" >"$W/qemu.log" 2>&1 &
    fi
    GUEST_PID=$!
    rvs_on_exit "rvs_stop_pid $GUEST_PID 5"
    for _ in $(seq $((timeout * 5))); do
        [ -f "$W/g/guest.up" ] && { up=1; break; }
        guest_alive || break
        sleep 0.2
    done
    if [ "$up" != 1 ]; then
        echo "guest: did not come up within ${timeout}s" >&2
        tail -n 30 "$W/qemu.log" "$W/console.log" >&2 || true
        return 1
    fi
}

# g SECS SCRIPT: run SCRIPT (bash) in the guest, at most SECS seconds;
# print its output, return its status. The agent runs commands in order;
# their number is kept in a file, since g also runs in subshells ($(g ...)).
g() {
    local secs=$1 n; shift
    n=$(($(cat "$W/g/seq") + 1))
    echo "$n" >"$W/g/seq"
    printf 'timeout -k 5 %s bash -c %q\n' "$secs" "${GUEST_PRELUDE:-}
$*" >"$W/g/cmd.$n.tmp"
    mv "$W/g/cmd.$n.tmp" "$W/g/cmd.$n"
    local end=$((SECONDS + secs + 30))
    until [ -f "$W/g/rc.$n" ]; do
        guest_alive || { echo "guest: gone" >&2; tail -n 20 "$W/console.log" >&2; exit 1; }
        ((SECONDS < end)) || { echo "guest: the agent did not answer command $n ($*)" >&2; tail -n 20 "$W/console.log" >&2; exit 1; }
        sleep 0.2
    done
    cat "$W/g/out.$n"
    return "$(cat "$W/g/rc.$n")"
}

# guest_poweroff: the agent's own command (sysrq power-off; QEMU exits).
# False if QEMU is still running 30 s later.
guest_poweroff() {
    local n
    n=$(($(cat "$W/g/seq") + 1))
    echo poweroff >"$W/g/cmd.$n.tmp" && mv "$W/g/cmd.$n.tmp" "$W/g/cmd.$n"
    for _ in $(seq 150); do guest_alive || return 0; sleep 0.2; done
    return 1
}
