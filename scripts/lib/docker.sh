# shellcheck shell=bash
# Docker for the rvs tests: a private dockerd that never touches the host's
# firewall or forwarding, and the base images docker/Dockerfile starts FROM,
# made locally (no registry is needed). Source common.sh first.
#
# The client is Debian's (docker.io, /usr/bin/docker), the same 20.10 as its
# daemon: `docker` below is that binary whatever else is on PATH (e.g. a
# newer client in /usr/local/bin), and `docker build` is its classic builder.

DOCKER_CLI=/usr/bin/docker
RVS_DOCKER_CACHE=${RVS_DOCKER_CACHE:-/var/cache/rvs-docker}

docker() { "$DOCKER_CLI" "$@"; }

# What the host's packet filters and forwarding look like, to compare before
# and after (rule counters and comment lines left out).
rvs_net_state() {
    local t
    for t in iptables-save ip6tables-save; do
        if command -v "$t" >/dev/null 2>&1; then
            echo "## $t"
            "$t" 2>/dev/null | sed -e '/^#/d' -e 's/\[[0-9]*:[0-9]*\]//' || true
        fi
    done
    if command -v nft >/dev/null 2>&1; then
        echo "## nft"
        nft list ruleset 2>/dev/null
    fi
    echo "## forwarding"
    echo "ipv4 $(cat /proc/sys/net/ipv4/ip_forward)"
    echo "ipv6 $(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)"
    echo "## docker0: $(ip -o link show docker0 2>/dev/null | wc -l)"
}

# rvs_dockerd_start ID: a dockerd of our own; sets DOCKER_HOST, DOCKERD_PID,
# DOCKERD_ROOT. Its data root is the cache (base images and build layers
# kept between runs) when no other run holds it, else a fresh one removed
# at exit. No bridge, no iptables, no forwarding, no NAT: containers get
# host networking (rvsd) or none (build steps).
rvs_dockerd_start() {
    local id=$1
    mkdir -p "$RVS_DOCKER_CACHE"
    exec {RVS_DOCKER_LOCK}>"$RVS_DOCKER_CACHE/lock"
    if flock -n "$RVS_DOCKER_LOCK"; then
        DOCKERD_ROOT=$RVS_DOCKER_CACHE/root
    else
        echo "   the cache $RVS_DOCKER_CACHE is in use by another run: a fresh data root"
        DOCKERD_ROOT=/var/tmp/rvs-docker-$id
        rvs_on_exit "rm -rf $DOCKERD_ROOT"
    fi
    DOCKERD_EXEC=/run/rvs-docker-$id
    rvs_on_exit "rm -rf $DOCKERD_EXEC"
    mkdir -p "$DOCKERD_ROOT" "$DOCKERD_EXEC"
    RVS_NET_BEFORE=$RVS_WORK/net.before
    rvs_net_state >"$RVS_NET_BEFORE"
    export DOCKER_HOST=unix://$DOCKERD_EXEC/docker.sock
    dockerd --data-root "$DOCKERD_ROOT" --exec-root "$DOCKERD_EXEC" \
        --pidfile "$DOCKERD_EXEC/dockerd.pid" -H "$DOCKER_HOST" \
        --containerd-namespace "rvs-$id" --containerd-plugins-namespace "rvs-$id-p" \
        --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --bridge=none --userland-proxy=false --log-level warn \
        >"$RVS_WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    rvs_on_exit "rvs_dockerd_stop"
    if ! rvs_wait_for 60 docker version; then
        echo "container-test: dockerd did not start" >&2
        tail -20 "$RVS_WORK/dockerd.log" >&2
        return 1
    fi
}

# Stop our dockerd (and the containerd it started) by pid, unmount what it
# left, and check that the host's filters and forwarding are as they were,
# restoring them if not. Returns 1 when something had changed.
rvs_dockerd_stop() {
    local ctd_pid="" rc=0
    [ -n "${DOCKERD_PID:-}" ] || return 0
    [ -r "$DOCKERD_EXEC/containerd/containerd.pid" ] && ctd_pid=$(cat "$DOCKERD_EXEC/containerd/containerd.pid")
    rvs_stop_pid "$DOCKERD_PID" 40
    [ -n "$ctd_pid" ] && rvs_stop_pid "$ctd_pid" 10
    DOCKERD_PID=""
    awk -v r="$DOCKERD_ROOT" -v e="$DOCKERD_EXEC" 'index($2, r) == 1 || index($2, e) == 1 {print $2}' /proc/mounts \
        | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    if [ -n "${RVS_NET_BEFORE:-}" ] && [ -r "$RVS_NET_BEFORE" ]; then
        rvs_net_state >"$RVS_WORK/net.after"
        if ! diff -u "$RVS_NET_BEFORE" "$RVS_WORK/net.after" >"$RVS_WORK/net.diff"; then
            echo "container-test: the host's filters, forwarding or links changed:" >&2
            cat "$RVS_WORK/net.diff" >&2
            rvs_net_restore
            rc=1
        fi
    fi
    return $rc
}

# Put back what rvs_net_state recorded: forwarding sysctls and the iptables
# rule sets (tables docker may add are flushed by the restore of the empty
# set, as far as the saved dump names them).
rvs_net_restore() {
    local v4 v6
    v4=$(awk '$1 == "ipv4" {print $2}' "$RVS_NET_BEFORE")
    v6=$(awk '$1 == "ipv6" {print $2}' "$RVS_NET_BEFORE")
    [ -n "$v4" ] && echo "$v4" >/proc/sys/net/ipv4/ip_forward
    [ -n "$v6" ] && echo "$v6" >/proc/sys/net/ipv6/conf/all/forwarding
    if command -v iptables-restore >/dev/null 2>&1; then
        sed -n '/^## iptables-save$/,/^## /p' "$RVS_NET_BEFORE" | grep -v '^## ' | iptables-restore 2>/dev/null || true
        sed -n '/^## ip6tables-save$/,/^## /p' "$RVS_NET_BEFORE" | grep -v '^## ' | ip6tables-restore 2>/dev/null || true
    fi
    ip link del docker0 2>/dev/null || true
}

# The images the Dockerfile starts FROM (one per line).
rvs_dockerfile_froms() { awk 'toupper($1) == "FROM" {print $2}' "$1"; }

# The packages a stage (by its FROM image) installs with apt-get install.
rvs_dockerfile_pkgs() {
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | awk -v img="$2" '
        toupper($1) == "FROM" { cur = $2 }
        cur == img && /apt-get install/ {
            s = $0; sub(/.*apt-get install/, "", s); sub(/&&.*/, "", s)
            n = split(s, w, /[ \t]+/)
            for (i = 1; i <= n; i++) if (w[i] != "" && w[i] !~ /^-/) print w[i]
        }'
}

# An image's rvs.base-key label (empty when the image is not there).
_rvs_image_key() { docker image inspect -f '{{index .Config.Labels "rvs.base-key"}}' "$1" 2>/dev/null || true; }

# rvs_base_images DOCKERFILE: make the FROM images locally unless a matching
# one is there already (never pulled: the official images would need network
# in the build steps, which this daemon does not give them). The Debian image is a
# mmdebstrap minbase bookworm; the Rust image is the same plus gcc, the host's
# active Rust toolchain (copied into /usr/local/rustup, cargo and rustc on
# PATH) and the crates of Cargo.lock in its CARGO_HOME with
# CARGO_NET_OFFLINE=true. Build steps here have no network (no bridge), so
# each base image also carries the packages its stage's RUN apt-get install
# names: there `apt-get update` fails softly and `apt-get install` finds
# them installed. The key label records what went in; a change rebuilds.
rvs_base_images() {
    local dockerfile=$1 img pkgs key sysroot rustv cratehome
    for img in $(rvs_dockerfile_froms "$dockerfile" | sort -u); do
        pkgs=$(rvs_dockerfile_pkgs "$dockerfile" "$img" | sort -u | tr '\n' ' ')
        case $img in
        rust:*)
            sysroot=$(rustc --print sysroot)
            rustv=$(rustc --version)
            pkgs="ca-certificates gcc libc6-dev $pkgs"
            key=$( { echo "v1 $img $pkgs $rustv"; cat "$RVS_ROOT/Cargo.lock"; } | sha256sum | cut -c1-16)
            ;;
        debian:*)
            key=$(echo "v1 $img $pkgs" | sha256sum | cut -c1-16)
            ;;
        *) echo "container-test: no local recipe for FROM $img" >&2; return 1 ;;
        esac
        if [ "$(_rvs_image_key "$img")" = "$key" ]; then
            echo "   $img: made locally before (key $key), kept"
            continue
        fi
        echo "   $img: no registry; making it with mmdebstrap (bookworm minbase + $pkgs)"
        local hooks=() changes=(--change 'CMD ["bash"]' --change "LABEL rvs.base-key=$key"
            --change "LABEL rvs.base-note=made-locally-by-scripts/container-test")
        if [[ $img == rust:* ]]; then
            cratehome=$RVS_WORK/cargo-home
            mkdir -p "$cratehome"
            echo "   fetching the crates of Cargo.lock for the image's CARGO_HOME"
            CARGO_HOME=$cratehome timeout 600 cargo fetch --locked --manifest-path "$RVS_ROOT/Cargo.toml" -q
            rm -rf "$cratehome/registry/src"
            hooks=(--customize-hook="mkdir -p \"\$1/usr/local/rustup/toolchains/host\" \"\$1/usr/local/cargo/bin\""
                --customize-hook="cp -a '$sysroot/bin' '$sysroot/lib' \"\$1/usr/local/rustup/toolchains/host/\""
                --customize-hook="for b in cargo rustc rustdoc; do ln -s ../../rustup/toolchains/host/bin/\$b \"\$1/usr/local/cargo/bin/\$b\"; done"
                --customize-hook="cp -a '$cratehome/registry' \"\$1/usr/local/cargo/\"")
            changes+=(--change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
                --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo'
                --change 'ENV CARGO_NET_OFFLINE=true' --change "LABEL rvs.rust=\"$rustv\"")
        fi
        # shellcheck disable=SC2086 # the package list is words
        if ! timeout 1500 mmdebstrap --quiet --variant=minbase --format=tar \
                --include="$(echo $pkgs | tr ' ' ',')" \
                --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
                --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
                "${hooks[@]}" bookworm - 2>"$RVS_WORK/mmdebstrap.log" \
            | timeout 900 docker import "${changes[@]}" - "$img" >/dev/null; then
            echo "container-test: making $img failed" >&2
            tail -20 "$RVS_WORK/mmdebstrap.log" >&2
            return 1
        fi
        [ "$(_rvs_image_key "$img")" = "$key" ] || { echo "container-test: $img not tagged" >&2; return 1; }
    done
}
