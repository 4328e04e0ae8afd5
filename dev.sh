#!/usr/bin/env bash
# dev.sh — build, run, test and benchmark tutti from a checkout.
#
#   ./dev.sh run      build, then serve etc/tutti.yaml on http://127.0.0.1:8080
#   ./dev.sh test     everything CI runs: unit + integration tests, the same
#                     under ASan+UBSan, then the fuzzers for a bounded time
#   ./dev.sh build    configure (out of tree, in _build/) + make + make install into _dev/
#   ./dev.sh deps     install the Debian packages the build and tests need
#   ./dev.sh fuzz [request|config|static]   build the fuzzers and run them (FUZZ_SECONDS each)
#   ./dev.sh bench    bench/run: tutti against nginx on this machine
#   ./dev.sh clean    remove every build directory
#
# Works from any directory, on Debian 12; installs what is missing with apt-get
# when run as root. Environment: FUZZ_SECONDS (30) bounds each fuzzer.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
ROOT=$PWD
PY=/usr/bin/python3     # Debian's: the one that sees python3-pytest & co.
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

DEPS=(build-essential autoconf automake libtool pkg-config
      libevent-dev libssl-dev libyaml-dev libpython3.11-dev libcmocka-dev node-llhttp
      libwslay-dev zlib1g-dev
      curl python3-pytest python3-requests
      python3-flask python3-django python3-bottle     # the WSGI apps the tests run
      python3-starlette python3-fastapi python3-uvloop # the ASGI apps
      python3-websockets python3-httpx                 # WebSocket and ASGI clients
      gunicorn                                         # an upstream of the proxy tests
      python3-cryptography testssl.sh                  # the TLS tests' certificates and audit
      clang libclang-rt-14-dev)      # clang + libFuzzer, for the fuzzers

say() { printf 'dev.sh: %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$ROOT/dev.sh"
}

# ---- dependencies ----

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install whatever of "$@" is missing. Only touches apt when something is.
ensure_packages() {
    local missing=() p
    command -v dpkg-query >/dev/null || die "dpkg-query not found: dev.sh expects Debian 12"
    for p in "$@"; do
        installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        printf 'dev.sh: missing Debian packages: %s\n' "${missing[*]}" >&2
        printf 'dev.sh: install them as root, then run dev.sh again:\n' >&2
        printf '    apt-get update && apt-get install -y %s\n' "${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
}

deps() { ensure_packages "${DEPS[@]}"; }

# ---- building ----

# The generated build system is not in git: make it when it is missing or
# older than what it is generated from.
autogen() {
    if [ ! -x configure ] || [ configure -ot configure.ac ] || [ configure -ot Makefile.am ]; then
        say "autoreconf -fi"
        mkdir -p m4
        autoreconf -fi
    fi
}

# configure_in DIR ARGS...: an out-of-tree build in DIR. Re-runs configure
# when the arguments changed (another prefix, the checkout moved), since the
# Makefile holds absolute paths.
configure_in() {
    local dir=$1; shift
    local want="$ROOT/configure $*"
    if [ -f "$dir/Makefile" ] && [ "$(cat "$dir/.dev-configure" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    # automake refuses to build out of tree once the tree itself was configured
    [ -f config.status ] && die "this checkout was configured in place (./configure); run 'make distclean' here first, dev.sh builds in _build/"
    say "configure in $dir: $*"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && "$ROOT/configure" -q "$@")
    printf '%s' "$want" >"$dir/.dev-configure"
}

# make + make install into a private prefix, so the installed daemon finds its
# modules in PREFIX/lib/tutti/modules, its compiled-in module_path.
build_tree() {
    local dir=$1; shift
    autogen
    configure_in "$dir" "$@"
    make -C "$dir" -j"$JOBS"
    make -C "$dir" -s install >/dev/null
}

build() {
    deps
    build_tree _build --prefix="$ROOT/_dev"
    say "built _dev/sbin/tutti"
}

run() {
    build
    echo
    echo "tutti: serving http://127.0.0.1:8080  (etc/tutti.yaml; Ctrl-C stops it)"
    echo
    exec "$ROOT/_dev/sbin/tutti" -c "$ROOT/etc/tutti.yaml" "$@"
}

clean() {
    rm -rf _build _build-asan _build-fuzz _dev _dev-asan
    say "removed _build _build-asan _build-fuzz _dev _dev-asan"
}

# ---- the test stages ----

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_OK=0

# stage NAME COMMAND...: run COMMAND in a subshell with errexit on, record
# PASS/FAIL and the time it took. Always returns 0; STAGE_OK tells.
# (Never call this from an `if`: bash ignores errexit inside a condition.)
stage() {
    local name=$1; shift
    local t0=$SECONDS rc
    printf '\n==== %s ====\n' "$name"
    set +e
    ( set -e; "$@" )
    rc=$?
    set -e
    local took=$((SECONDS - t0))
    STAGE_NAMES+=("$name")
    if [ $rc -eq 0 ]; then
        STAGE_RESULTS+=("PASS  $(printf '%4ds' "$took")")
        STAGE_OK=1
    else
        STAGE_RESULTS+=("FAIL  $(printf '%4ds' "$took")  (exit $rc)")
        STAGE_OK=0
    fi
    return 0
}

# A stage that cannot run because the one it needs failed: it did not pass.
stage_skipped() {
    STAGE_NAMES+=("$1")
    STAGE_RESULTS+=("FAIL     -   (not run: $2)")
}

unit_tests() {
    local dir=$1
    if ! make -C "$dir" -j"$JOBS" check; then
        if [ -f "$dir/test-suite.log" ]; then
            printf '\n---- %s/test-suite.log ----\n' "$dir"
            cat "$dir/test-suite.log"
        fi
        return 1
    fi
}

integration_tests() {
    local prefix=$1 build=$2 rc=0
    TUTTI_BIN="$ROOT/$prefix/sbin/tutti" TUTTI_BUILD_DIR="$ROOT/$build" TUTTI_SRC_DIR="$ROOT" \
        "$PY" -m pytest -q -p no:cacheprovider tests/integration || rc=$?
    # pytest says 5 when it found no test: nothing was checked, so no pass.
    [ $rc -eq 5 ] && echo "dev.sh: no integration tests were collected in tests/integration"
    return $rc
}

# Sanitizer settings: leaks count, reports go to stderr (no log_path), where
# the test fixture looks for them when TUTTI_SANITIZED is set.
sanitized() {
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export TUTTI_SANITIZED=1
    "$@"
}

fuzz_build() {
    autogen
    configure_in _build-fuzz CC=clang --enable-fuzz --prefix="$ROOT/_dev-fuzz"
    make -C _build-fuzz -j"$JOBS" tests/fuzz/fuzz_request tests/fuzz/fuzz_config \
        tests/fuzz/fuzz_static
}

# fuzz NAME: run tests/fuzz/fuzz_NAME for FUZZ_SECONDS on a copy of its seed
# corpus (what it finds stays in _build-fuzz, the tree stays clean).
fuzz() {
    local name=$1
    local bin=_build-fuzz/tests/fuzz/fuzz_$name seeds=tests/fuzz/corpus/$name
    local work=_build-fuzz/run/$name rc=0
    [ -x "$bin" ] || { echo "dev.sh: no fuzzer $bin (known: request, config, static)" >&2; return 1; }
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/crashes"
    if [ -d "$seeds" ]; then
        cp -R "$seeds"/. "$work/corpus"/
    else
        echo "dev.sh: warning: no seed corpus in $seeds"
    fi
    echo "fuzz_$name: ${FUZZ_SECONDS}s on $(find "$work/corpus" -type f | wc -l) seeds (log: $work/fuzz.log)"
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 100 "$work/fuzz.log"
        local a
        for a in "$work"/crashes/*; do
            [ -e "$a" ] && echo "dev.sh: reproduce with: $bin $a"
        done
        return $rc
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$work/fuzz.log" || tail -n 5 "$work/fuzz.log"
}

# ./dev.sh fuzz [NAME...]: the fuzzers alone, outside the test stages
fuzz_only() {
    local name names=("$@")
    [ $# -gt 0 ] || names=(request config static)
    deps
    fuzz_build
    for name in "${names[@]}"; do
        fuzz "$name"
    done
}

test_all() {
    exec </dev/null             # nothing here reads stdin; CI may not give one
    deps

    stage "build" build_tree _build --prefix="$ROOT/_dev"
    if [ $STAGE_OK = 1 ]; then
        stage "unit tests" unit_tests _build
        stage "integration tests" integration_tests _dev _build
    else
        stage_skipped "unit tests" "build failed"
        stage_skipped "integration tests" "build failed"
    fi

    stage "build (asan+ubsan)" build_tree _build-asan --enable-sanitizers --prefix="$ROOT/_dev-asan"
    if [ $STAGE_OK = 1 ]; then
        stage "unit tests (asan+ubsan)" sanitized unit_tests _build-asan
        stage "integration tests (asan+ubsan)" sanitized integration_tests _dev-asan _build-asan
    else
        stage_skipped "unit tests (asan+ubsan)" "build failed"
        stage_skipped "integration tests (asan+ubsan)" "build failed"
    fi

    stage "build (fuzzers)" fuzz_build
    if [ $STAGE_OK = 1 ]; then
        stage "fuzz request (${FUZZ_SECONDS}s)" fuzz request
        stage "fuzz config (${FUZZ_SECONDS}s)" fuzz config
        stage "fuzz static (${FUZZ_SECONDS}s)" fuzz static
    else
        stage_skipped "fuzz request" "fuzzer build failed"
        stage_skipped "fuzz config" "fuzzer build failed"
        stage_skipped "fuzz static" "fuzzer build failed"
    fi

    local i passed=0 failed=0
    printf '\n==== summary ====\n'
    for i in "${!STAGE_NAMES[@]}"; do
        printf '%-34s %s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}"
        case ${STAGE_RESULTS[$i]} in
            PASS*) passed=$((passed + 1)) ;;
            *)     failed=$((failed + 1)) ;;
        esac
    done
    echo "$passed passed, $failed failed"
    [ $failed -eq 0 ]
}

# ---- main ----

cmd=${1:-help}
[ $# -gt 0 ] && shift
case $cmd in
    deps)   deps ;;
    build)  build ;;
    run)    run "$@" ;;
    test)   test_all ;;
    fuzz)   fuzz_only "$@" ;;
    bench)  exec "$ROOT/bench/run" "$@" ;;
    clean)  clean ;;
    help|-h|--help) usage ;;
    *)      usage >&2; die "unknown command '$cmd'" ;;
esac
