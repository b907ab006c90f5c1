#!/bin/sh
# Container entrypoint: check hugepages, then start rvsd with the config
# file and (when present) a rules file in ipvsadm-save format.
#   RVS_CONFIG  rvsd configuration (default /etc/rvs/rvsd.toml)
#   RVS_RULES   rules to load at start (default /etc/rvs/rules, optional)
#   RVS_NO_HUGE=1  run without hugepages (testing only: slower)
# Arguments are passed to rvsd; EAL arguments go after `--`.
set -eu

if [ "${RVS_NO_HUGE:-0}" != "1" ]; then
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
set -- -c "$RVS_CONFIG" "$@"
if [ -r "${RVS_RULES:-}" ]; then
    set -- --restore "$RVS_RULES" "$@"
fi
if [ "${RVS_NO_HUGE:-0}" = "1" ]; then
    case " $* " in *" -- "*) set -- "$@" --no-huge ;; *) set -- "$@" -- --no-huge ;; esac
fi
exec /usr/local/bin/rvsd "$@"
