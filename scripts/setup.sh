#!/bin/sh
#  zube set-up on Debian 12, as root (or with sudo available):
#
#    scripts/setup.sh run    install what is missing, build, run zube's main job
#    scripts/setup.sh test   install what is missing, build, run the whole test
#                            suite (plain and under ASan+UBSan); the last line
#                            is "N passed, N failed"
#    scripts/setup.sh build  install what is missing and build only
#
#  Builds go to build/default and build/asan (out of tree).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-run}
JOBS=$(nproc 2>/dev/null || echo 2)

#  Everything zube needs from Debian: the toolchain, the libraries it links,
#  and the servers and tools its tests start themselves (docs/dependencies.md).
PACKAGES="build-essential autoconf automake libtool pkgconf git
    protobuf-c-compiler libprotobuf-c-dev libzmq3-dev libczmq-dev libsodium-dev
    libhiredis-dev libyaml-dev liblmdb-dev libcurl4-openssl-dev
    python3 python3-zmq python3-protobuf protobuf-compiler man-db groff-base procps iproute2
    redis-server etcd-server etcd-client
    runc crun busybox-static containernetworking-plugins iptables libarchive-dev zstd"

s_install_missing () {
    missing=""
    for package in $PACKAGES; do
        status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
        case "$status" in
            *"ok installed"*) ;;
            *) missing="$missing $package" ;;
        esac
    done
    if [ -n "$missing" ]; then
        echo "setup: installing$missing"
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    fi
}

#  $1 build dir, $2.. configure flags
s_build () {
    dir=$1
    shift
    if [ ! -x "$ROOT/configure" ] || [ "$ROOT/configure.ac" -nt "$ROOT/configure" ]; then
        "$ROOT/autogen.sh"
    fi
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        (cd "$dir" && "$ROOT/configure" -q "$@")
    fi
    make -C "$dir" -j"$JOBS" -s >/dev/null
}

#  Runs `make check` in $1; appends its totals to $ROOT/build/totals.
s_check () {
    dir=$1
    label=$2
    echo "setup: running the test suite ($label)"
    rc=0
    make -C "$dir" -j"$JOBS" check >"$dir/check.out" 2>&1 || rc=$?
    grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):|^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' "$dir/check.out" \
        | grep -v '^PASS:' || true
    pass=$(sed -n 's/^# PASS: *//p' "$dir/check.out" | tail -1)
    skip=$(sed -n 's/^# SKIP: *//p' "$dir/check.out" | tail -1)
    fail=$(sed -n 's/^# FAIL: *//p' "$dir/check.out" | tail -1)
    error=$(sed -n 's/^# ERROR: *//p' "$dir/check.out" | tail -1)
    xpass=$(sed -n 's/^# XPASS: *//p' "$dir/check.out" | tail -1)
    if [ -z "$pass" ]; then
        #  The build of the tests itself failed: show why and count it.
        tail -40 "$dir/check.out"
        pass=0 fail=1
    fi
    fail=$(( ${fail:-0} + ${error:-0} + ${xpass:-0} ))
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1
    fi
    if [ "$fail" -ne 0 ]; then
        for log in $(find "$dir/tests" -name '*.log' 2>/dev/null); do
            if grep -q '^not ok\|^ERROR' "$log" 2>/dev/null; then
                echo "---- $log"
                grep -B2 -A8 '^not ok' "$log" | head -60
            fi
        done
    fi
    echo "$pass ${skip:-0} $fail" >>"$ROOT/build/totals"
}

#  The main job with real containers (root, runc and the CNI plugins: what
#  `zube up` then runs its node with): a Deployment of busybox httpd
#  behind a Service, reached at each pod IP from the host.
s_run_main_oci () {
    ctl=$1
    dir=$2
    echo "+ scripts/make-test-image.sh -f oci-archive busybox.tar; zubectl image import busybox.tar --node node-1"
    "$ROOT/scripts/make-test-image.sh" -f oci-archive "$dir/busybox.tar" >/dev/null
    $ctl image import "$dir/busybox.tar" --node node-1
    echo "+ zubectl apply -f examples/oci/web.yaml"
    $ctl apply -f "$ROOT/examples/oci/web.yaml"
    for _ in $(seq 100); do
        $ctl get deployment httpd -n web --no-headers 2>/dev/null | grep -q ' 2/2 ' && break
        sleep 0.2
    done
    echo "+ zubectl get deployments,replicasets,pods -n web -o wide"
    $ctl get deployments,replicasets,pods -n web -o wide
    echo "+ zubectl get endpointslices -n web -o yaml  (addresses and readiness)"
    $ctl get endpointslices -n web -o yaml | grep -E '^  - addresses|^    - "|ready:'
    for ip in $($ctl get pods -n web -o wide --no-headers | awk '{print $6}'); do
        echo "+ wget -qO- http://$ip/"
        #  timeout(1), not wget's -T: Debian 12's busybox-static wget
        #  crashes (SIGSEGV) with -T
        timeout 5 busybox wget -qO- "http://$ip/" || echo "setup: pod $ip did not answer" >&2
    done
}

#  The main job on simulated nodes (not root, or no runc).
s_run_main_sim () {
    ctl=$1
    echo "+ zubectl apply -f examples/workload/demo.yaml"
    $ctl apply -f "$ROOT/examples/workload/demo.yaml"
    for _ in $(seq 50); do
        $ctl get pod web -n demo --no-headers 2>/dev/null | grep -q Running && break
        sleep 0.2
    done
    echo "+ zubectl get nodes,pods -A -o wide"
    $ctl get nodes,pods -A -o wide
    echo "+ zubectl label pod web -n demo tier=frontend; zubectl get pods -A -l tier=frontend"
    $ctl label pod web -n demo tier=frontend
    $ctl get pods -A -l tier=frontend
}

s_run_main () {
    bin="$ROOT/build/default"
    dir=$(mktemp -d /tmp/zube-main-XXXXXX)
    trap '"$bin/zube" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
    ctl="$bin/zubectl --config $dir/config"
    "$bin/zube" up --detach --dir "$dir"
    $ctl version
    $ctl bus services
    if $ctl get node node-1 --no-headers -o wide | grep -q 'oci://'; then
        s_run_main_oci "$ctl" "$dir"
    else
        s_run_main_sim "$ctl"
    fi
    "$bin/zube" down --dir "$dir"
}

s_install_missing
case "$MODE" in
    build)
        s_build "$ROOT/build/default"
        ;;
    run)
        s_build "$ROOT/build/default"
        s_run_main
        ;;
    test)
        mkdir -p "$ROOT/build"
        rm -f "$ROOT/build/totals"
        s_build "$ROOT/build/default"
        s_check "$ROOT/build/default" "plain build"
        s_build "$ROOT/build/asan" --enable-asan
        s_check "$ROOT/build/asan" "AddressSanitizer + UndefinedBehaviorSanitizer"
        passed=$(awk '{p += $1} END {print p}' "$ROOT/build/totals")
        skipped=$(awk '{s += $2} END {print s}' "$ROOT/build/totals")
        failed=$(awk '{f += $3} END {print f}' "$ROOT/build/totals")
        echo "($skipped skipped)"
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        ;;
    *)
        echo "usage: $0 run|test|build" >&2
        exit 1
        ;;
esac
