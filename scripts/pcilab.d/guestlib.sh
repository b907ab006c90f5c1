# shellcheck shell=bash
# Helpers for the commands scripts/pcilab runs in its guest (sourced by each
# command before it runs; RVS_BIN, WORK and SOCK come from the command's
# prelude). Everything here runs inside the QEMU guest, as root.

# pci_driver ADDR: the driver ADDR is bound to, or "none".
pci_driver() {
    local l
    l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) || { echo none; return; }
    basename "$l"
}

# pci_bind ADDR DRIVER|none: unbind ADDR and bind it to DRIVER (a PCI driver
# name: vfio-pci, uio_pci_generic, e1000e, virtio-pci), or leave it unbound.
pci_bind() {
    local dev=$1 drv=$2 p=/sys/bus/pci/devices/$1
    [ -e "$p" ] || { echo "pci_bind: no device $dev" >&2; return 1; }
    if [ -e "$p/driver" ]; then echo "$dev" >"$p/driver/unbind"; fi
    if [ "$drv" = none ]; then
        echo >"$p/driver_override"
        return 0
    fi
    case $drv in
    vfio-pci|uio_pci_generic)
        # As the README tells an operator to: DPDK's own tool.
        modprobe "$drv"
        echo >"$p/driver_override"
        dpdk-devbind.py -b "$drv" "$dev" ;;
    *)
        case $drv in
        virtio-pci) modprobe virtio_pci; modprobe virtio_net ;;
        *) modprobe "$drv" ;;
        esac
        # Back to a kernel driver through driver_override, which works for
        # every driver.
        echo "$drv" >"$p/driver_override"
        echo "$dev" >/sys/bus/pci/drivers_probe 2>/dev/null || true ;;
    esac
    [ "$(pci_driver "$dev")" = "$drv" ] || { echo "pci_bind: $dev did not bind to $drv" >&2; return 1; }
}

# hp_set N: reserve N 2 MiB hugepages (and mount hugetlbfs on /dev/hugepages
# unless HP_MOUNT=0).
hp_set() {
    echo "$1" >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    if [ "${HP_MOUNT:-1}" = 1 ]; then
        mountpoint -q /dev/hugepages || mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
    else
        while mountpoint -q /dev/hugepages; do umount /dev/hugepages; done
    fi
    local got
    got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
    [ "$got" = "$1" ] || { echo "hp_set: asked for $1 hugepages, got $got" >&2; return 1; }
}

# hp_state: "total=T free=F files=N" (rtemap files and anything else left in
# the hugetlbfs mount, when it is mounted).
hp_state() {
    local t f n=0
    t=$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)
    f=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
    if mountpoint -q /dev/hugepages; then n=$(find /dev/hugepages -mindepth 1 | wc -l); fi
    echo "total=$t free=$f files=$n"
}

# rvsd_start NAME CONFIG EAL-ARGS...: start rvsd in the background; its
# stdout/stderr in WORK/NAME.out/.err, its pid in WORK/NAME.pid, its exit
# status in WORK/NAME.rc once it has ended.
rvsd_start() {
    local name=$1 cfg=$2; shift 2
    rm -f "$WORK/$name.pid" "$WORK/$name.rc" "$SOCK"
    mkdir -p "$(dirname "$SOCK")"
    (
        bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$WORK/$name.pid" \
            "$RVS_BIN/rvsd" -c "$cfg" --sock "$SOCK" -- "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
        echo $? >"$WORK/$name.rc"
    ) &
}

# rvsd_wait NAME SECS: wait until rvsd answers on its socket (0), or has
# exited (1: its status is in WORK/NAME.rc), at most SECS (2).
rvsd_wait() {
    local name=$1 end=$((SECONDS + $2))
    while ((SECONDS < end)); do
        [ -f "$WORK/$name.rc" ] && return 1
        if [ -S "$SOCK" ] && adm -Ln >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 2
}

# rvsd_stop NAME SIG SECS: signal rvsd and wait for it to exit; prints its
# exit status.
rvsd_stop() {
    local name=$1 sig=$2 end=$((SECONDS + $3)) pid
    pid=$(cat "$WORK/$name.pid")
    kill "-$sig" "$pid" 2>/dev/null || true
    while ((SECONDS < end)); do
        [ -f "$WORK/$name.rc" ] && { cat "$WORK/$name.rc"; return 0; }
        sleep 0.2
    done
    echo "rvsd_stop: rvsd ($pid) still running after ${3}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
    return 1
}

adm() { "$RVS_BIN/rvsadm" "$@" --sock "$SOCK"; }
