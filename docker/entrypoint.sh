#!/bin/sh
# Container entrypoint: check hugepages, then start rvsd with the config
# file and (when present) a rules file in ipvsadm-save format.
#   RVS_CONFIG   rvsd configuration (default /etc/rvs/rvsd.toml)
#   RVS_RULES    rules to load at start (default /etc/rvs/rules, optional).
#                Rules changed at run time are not written back by itself:
#                save them with `rvsadm -S -n > /etc/rvs/rules` (mounted
#                writable) before a stop to have them at the next start.
#   RVS_LCORES   EAL lcores when the arguments give none (default 0-1:
#                main lcore 0, one worker on lcore 1)
#   RVS_NO_HUGE=1  run without hugepages (testing only: slower); memory
#                is then -m RVS_MEM_MB when set, else what rvsd sizes for
#                its packet pool
#   RVSD         the rvsd binary (default /usr/local/bin/rvsd; tests use echo)
#   RVS_MEMINFO  where to read hugepage counts (default /proc/meminfo; tests)
# Arguments are passed to rvsd; EAL arguments go after `--`. Added to them
# unless given: -l $RVS_LCORES; --no-huge (and -m $RVS_MEM_MB when set) for
# RVS_NO_HUGE=1. rvsd itself adds --in-memory on hugepages (no files in
# hugetlbfs or /var/run/dpdk, every page back to the host when it exits,
# even when killed, no hugetlbfs mount needed), --no-pci or an allow-list of
# the configured PCI devices, and -m for --no-huge.
set -eu

no_huge=${RVS_NO_HUGE:-0}
if [ "$no_huge" != "1" ]; then
    meminfo=${RVS_MEMINFO:-/proc/meminfo}
    total=$(awk '/^HugePages_Total:/ {print $2}' "$meminfo")
    free=$(awk '/^HugePages_Free:/ {print $2}' "$meminfo")
    if [ "${total:-0}" -eq 0 ]; then
        cat >&2 <<MSG
rvs: no hugepages available in this container.
  On the host, reserve them, e.g. 1024 x 2 MiB:
    echo 1024 | sudo tee /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
  (rvsd maps them itself: no hugetlbfs mount is needed in the container),
  or set RVS_NO_HUGE=1 to run without them (testing only).
MSG
        exit 78
    fi
    echo "rvs: hugepages: ${free:-0} free of ${total}" >&2
fi

[ -r "$RVS_CONFIG" ] || { echo "rvs: config file $RVS_CONFIG not found (mount one)" >&2; exit 78; }
mkdir -p /run/rvs

# Split the arguments: rvsd's own before `--`, the EAL's after it.
n_rvsd=0
seen_sep=0
for a in "$@"; do
    if [ "$a" = "--" ]; then seen_sep=1; break; fi
    n_rvsd=$((n_rvsd + 1))
done
has_lcores=0 has_mem=0
i=0
for a in "$@"; do
    i=$((i + 1))
    [ "$i" -gt $((n_rvsd + 1)) ] || continue
    case $a in
    -l|-l?*|--lcores|--lcores=*|-c|-c?*) has_lcores=1 ;;
    -m|-m?*) has_mem=1 ;;
    esac
done
[ "$seen_sep" = 1 ] || set -- "$@" --
[ "$has_lcores" = 1 ] || set -- "$@" -l "${RVS_LCORES:-0-1}"
if [ "$no_huge" = "1" ]; then
    set -- "$@" --no-huge
    [ "$has_mem" = 1 ] || [ -z "${RVS_MEM_MB:-}" ] || set -- "$@" -m "$RVS_MEM_MB"
fi

if [ -r "${RVS_RULES:-}" ]; then
    set -- --restore "$RVS_RULES" "$@"
fi
set -- -c "$RVS_CONFIG" "$@"
echo "rvs: rvsd $*" >&2
exec "${RVSD:-/usr/local/bin/rvsd}" "$@"
