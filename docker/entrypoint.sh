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
#                is then RVS_MEM_MB (default 1024) MB unless -m is given
#   RVSD         the rvsd binary (default /usr/local/bin/rvsd; tests use echo)
# Arguments are passed to rvsd; EAL arguments go after `--`. Added to them
# unless given: -l $RVS_LCORES, and on hugepages --in-memory (no files in
# hugetlbfs or /var/run/dpdk: every hugepage goes back to the host when rvsd
# exits, even when killed; give --file-prefix NAME instead for DPDK
# secondary processes).
set -eu

no_huge=${RVS_NO_HUGE:-0}
if [ "$no_huge" != "1" ]; then
    total=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    if [ "${total:-0}" -eq 0 ] || ! grep -qs hugetlbfs /proc/mounts; then
        cat >&2 <<MSG
rvs: no hugepages available in this container.
  On the host, reserve them and mount hugetlbfs, e.g. 1024 x 2 MiB:
    echo 1024 | sudo tee /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    sudo mkdir -p /dev/hugepages && sudo mount -t hugetlbfs nodev /dev/hugepages
  then start the container with /dev/hugepages mounted (see docker/compose.yaml),
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
has_lcores=0 has_mem=0 has_prefix=0
i=0
for a in "$@"; do
    i=$((i + 1))
    [ "$i" -gt $((n_rvsd + 1)) ] || continue
    case $a in
    -l|-l?*|--lcores|--lcores=*|-c|-c?*) has_lcores=1 ;;
    -m|-m?*|--socket-mem|--socket-mem=*) has_mem=1 ;;
    --in-memory|--file-prefix|--file-prefix=*) has_prefix=1 ;;
    esac
    if [ "$no_huge" = "1" ]; then
        case $a in
        --socket-mem|--socket-mem=*)
            echo "rvs: RVS_NO_HUGE=1: --socket-mem needs hugepages; use -m MB" >&2
            exit 78 ;;
        esac
    fi
done
[ "$seen_sep" = 1 ] || set -- "$@" --
[ "$has_lcores" = 1 ] || set -- "$@" -l "${RVS_LCORES:-0-1}"
# (--no-huge implies DPDK's legacy memory mode, which refuses --in-memory.)
[ "$has_prefix" = 1 ] || [ "$no_huge" = "1" ] || set -- "$@" --in-memory
if [ "$no_huge" = "1" ]; then
    set -- "$@" --no-huge
    [ "$has_mem" = 1 ] || set -- "$@" -m "${RVS_MEM_MB:-1024}"
fi

if [ -r "${RVS_RULES:-}" ]; then
    set -- --restore "$RVS_RULES" "$@"
fi
set -- -c "$RVS_CONFIG" "$@"
echo "rvs: rvsd $*" >&2
exec "${RVSD:-/usr/local/bin/rvsd}" "$@"
