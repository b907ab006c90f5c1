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
        >"$RVS_WORK/dockerd.log" 2>&1 {RVS_DOCKER_LOCK}>&- &
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

# _rvs_debootstrap TAG KEY "PACKAGES" [mmdebstrap options...]: a bookworm
# minbase with PACKAGES (docs, man pages and locales left out, as in the
# official slim images) imported as TAG with the label rvs.base-key=KEY;
# the options after the packages are mmdebstrap's (hooks) and docker
# import's (--change ...), told apart by their names.
_rvs_debootstrap() {
    local tag=$1 key=$2 pkgs=$3; shift 3
    local mm=() changes=(--change 'CMD ["bash"]' --change "LABEL rvs.base-key=$key"
        --change "LABEL rvs.base-note=made-locally-by-scripts/container-test")
    local o
    for o in "$@"; do
        case $o in --customize-hook=*) mm+=("$o") ;; *) changes+=("$o") ;; esac
    done
    # shellcheck disable=SC2086 # the package list is words
    if ! timeout 1500 mmdebstrap --quiet --variant=minbase --format=tar \
            --include="$(echo $pkgs | tr ' ' ',')" \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
            "${mm[@]}" bookworm - 2>"$RVS_WORK/mmdebstrap.log" \
        | timeout 900 docker import "${changes[@]}" - "$tag" >/dev/null; then
        echo "container-test: making $tag failed" >&2
        tail -20 "$RVS_WORK/mmdebstrap.log" >&2
        return 1
    fi
    [ "$(_rvs_image_key "$tag")" = "$key" ] || { echo "container-test: $tag not tagged" >&2; return 1; }
}

# rvs_base_images DOCKERFILE: make the FROM images locally unless a matching
# one is there already (never pulled: the official images would need network
# in the build steps, which this daemon does not give them).
# - debian:bookworm-slim: a mmdebstrap minbase bookworm;
# - rust:1.95-bookworm: the same plus gcc and the host's active Rust
#   toolchain (copied into /usr/local/rustup; cargo, rustc, rustdoc on PATH)
#   as rvs-rust-toolchain:local, and on top of it a layer with the crates of
#   Cargo.lock in CARGO_HOME, CARGO_NET_OFFLINE=true (a Cargo.lock change
#   remakes only this layer).
# Build steps here have no network (no bridge), so each base image also
# carries the packages its stage's RUN apt-get install names: there
# `apt-get update` fails softly and `apt-get install` finds them installed.
# The rvs.base-key label records what went in; a change remakes the image.
rvs_base_images() {
    local dockerfile=$1 img pkgs key tkey sysroot rustv ctx
    for img in $(rvs_dockerfile_froms "$dockerfile" | sort -u); do
        pkgs=$(rvs_dockerfile_pkgs "$dockerfile" "$img" | sort -u | tr '\n' ' ')
        case $img in
        debian:*)
            key=$(echo "v1 $img $pkgs" | sha256sum | cut -c1-16)
            if [ "$(_rvs_image_key "$img")" = "$key" ]; then
                echo "   $img: made locally before (key $key), kept"
                continue
            fi
            echo "   $img: no registry; making it with mmdebstrap (bookworm minbase + $pkgs)"
            _rvs_debootstrap "$img" "$key" "$pkgs"
            ;;
        rust:*)
            sysroot=$(rustc --print sysroot)
            rustv=$(rustc --version)
            pkgs="ca-certificates gcc libc6-dev $pkgs"
            tkey=$(echo "v2 $pkgs $rustv" | sha256sum | cut -c1-16)
            key=$( { echo "v2 $img $tkey"; cat "$RVS_ROOT/Cargo.lock"; } | sha256sum | cut -c1-16)
            if [ "$(_rvs_image_key "$img")" = "$key" ]; then
                echo "   $img: made locally before (key $key), kept"
                continue
            fi
            if [ "$(_rvs_image_key rvs-rust-toolchain:local)" != "$tkey" ]; then
                echo "   $img: no registry; making it with mmdebstrap (bookworm minbase + $pkgs) and $rustv"
                _rvs_debootstrap rvs-rust-toolchain:local "$tkey" "$pkgs" \
                    --customize-hook="mkdir -p \"\$1/usr/local/rustup/toolchains/host\" \"\$1/usr/local/cargo/bin\"" \
                    --customize-hook="cp -a '$sysroot/bin' '$sysroot/lib' \"\$1/usr/local/rustup/toolchains/host/\"" \
                    --customize-hook="for b in cargo rustc rustdoc; do ln -s ../../rustup/toolchains/host/bin/\$b \"\$1/usr/local/cargo/bin/\$b\"; done" \
                    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
                    --change "LABEL rvs.rust=\"$rustv\""
            fi
            echo "   $img: rvs-rust-toolchain:local + the crates of Cargo.lock (cargo fetch on the host)"
            ctx=$RVS_WORK/crates
            mkdir -p "$ctx/cargo"
            CARGO_HOME=$ctx/cargo timeout 600 cargo fetch --locked --manifest-path "$RVS_ROOT/Cargo.toml" -q
            rm -rf "$ctx/cargo/registry/src"
            printf '%s\n' 'FROM rvs-rust-toolchain:local' 'COPY cargo/registry /usr/local/cargo/registry' \
                'ENV CARGO_NET_OFFLINE=true' "LABEL rvs.base-key=$key" >"$ctx/Dockerfile"
            if ! timeout 600 docker build -q -t "$img" "$ctx" >"$RVS_WORK/crates.log" 2>&1; then
                cat "$RVS_WORK/crates.log" >&2; return 1
            fi
            [ "$(_rvs_image_key "$img")" = "$key" ] || { echo "container-test: $img not tagged" >&2; return 1; }
            ;;
        *) echo "container-test: no local recipe for FROM $img" >&2; return 1 ;;
        esac
    done
}
