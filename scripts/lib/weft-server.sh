# shellcheck shell=bash
# Sourced by scripts/autobahn and scripts/browser-test: start and stop one weft server under test.
#
#   weft_build TARGET...         cargo build --release (native: -p weft-server; wasm: the same
#                                for wasm32-wasip2; engine-host: scripts/build-engine and
#                                -p weft-host); returns 1 when it fails
#   weft_start TARGET LOGPREFIX  TARGET is native, wasm or engine-host (target/release/weft-host
#                                --listen 127.0.0.1:0, the engine component): starts
#                                  native: target/release/weft serve --listen 127.0.0.1:0
#                                          --workers 1 --quiet
#                                  wasm:   wasmtime run -S inherit-network
#                                          target/wasm32-wasip2/release/weft.wasm serve ...(same)
#                                waits (10 s native, 90 s wasm: wasmtime compiles the component)
#                                for its first stdout line `weft: listening on http://ADDR/` and
#                                sets WEFT_ADDR (HOST:PORT) and WEFT_PID; returns 1 (after a
#                                message on stderr and stopping it) otherwise. Output goes to
#                                LOGPREFIX.stdout / LOGPREFIX.stderr.
#   weft_stop                    TERM, then KILL after 5 s; safe to call twice (use it in a trap)
#   run_child CMD...             runs CMD in the background and waits for it, so that a TERM or
#                                INT to the script runs its trap at once (bash defers traps
#                                until a foreground command ends); child_stop (in the trap)
#                                ends it
#
# Needs ROOT (the repository) set by the caller. WEFT_WASMTIME overrides the wasmtime binary
# (default: wasmtime on PATH, else ~/.cargo/bin/wasmtime).

WEFT_PID=
# shellcheck disable=SC2034 # read by the scripts that source this file
WEFT_ADDR=
CHILD_PID=

run_child() {
    local rc=0
    "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=
    return "$rc"
}

child_stop() {
    [ -n "$CHILD_PID" ] || return 0
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
    CHILD_PID=
}

weft_wasmtime() {
    if [ -n "${WEFT_WASMTIME:-}" ]; then
        printf '%s' "$WEFT_WASMTIME"
    elif command -v wasmtime >/dev/null 2>&1; then
        command -v wasmtime
    elif [ -x "$HOME/.cargo/bin/wasmtime" ]; then
        printf '%s' "$HOME/.cargo/bin/wasmtime"
    else
        return 1
    fi
}

weft_build() {
    local t rc=0
    for t in "$@"; do
        case $t in
            native) (cd "$ROOT" && cargo build --release --quiet -p weft-server) || rc=1 ;;
            wasm) (cd "$ROOT" && cargo build --release --quiet --target wasm32-wasip2 -p weft-server) || rc=1 ;;
            engine-host) (cd "$ROOT" && scripts/build-engine && cargo build --release --quiet -p weft-host) || rc=1 ;;
        esac
    done
    return "$rc"
}

weft_start() {
    local target=$1 prefix=$2 wait_secs=10 cmd=()
    local serve_args=(serve --listen 127.0.0.1:0 --workers 1 --quiet)
    case $target in
        native)
            [ -x "$ROOT/target/release/weft" ] || { echo "target/release/weft is not built" >&2; return 1; }
            cmd=("$ROOT/target/release/weft" "${serve_args[@]}")
            ;;
        wasm)
            local wasmtime wasm=$ROOT/target/wasm32-wasip2/release/weft.wasm
            wasmtime=$(weft_wasmtime) || { echo "wasmtime not found (scripts/setup installs it)" >&2; return 1; }
            [ -f "$wasm" ] || { echo "${wasm#"$ROOT"/} is not built" >&2; return 1; }
            cmd=("$wasmtime" run -S inherit-network "$wasm" "${serve_args[@]}")
            wait_secs=90
            ;;
        engine-host)
            # The engine component under the Rust host (crates/weft-host).
            [ -x "$ROOT/target/release/weft-host" ] || { echo "target/release/weft-host is not built" >&2; return 1; }
            cmd=("$ROOT/target/release/weft-host" --listen 127.0.0.1:0 --engine "$ROOT/target/weft-engine.wasm")
            wait_secs=90
            ;;
        *) echo "unknown target: $target" >&2; return 1 ;;
    esac
    : >"$prefix.stdout"
    "${cmd[@]}" >"$prefix.stdout" 2>"$prefix.stderr" </dev/null &
    WEFT_PID=$!
    local i line
    for ((i = 0; i < wait_secs * 10; i++)); do
        line=$(head -n 1 "$prefix.stdout" 2>/dev/null || true)
        if [[ $line =~ listening\ on\ http://([^/]+)/ ]]; then
            WEFT_ADDR=${BASH_REMATCH[1]}
            return 0
        fi
        if ! kill -0 "$WEFT_PID" 2>/dev/null; then
            echo "weft ($target) exited during start-up; its stderr:" >&2
            tail -n 5 "$prefix.stderr" >&2 || true
            wait "$WEFT_PID" 2>/dev/null || true
            WEFT_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "weft ($target) printed no 'listening on' line within $wait_secs s" >&2
    weft_stop
    return 1
}

weft_stop() {
    [ -n "$WEFT_PID" ] || return 0
    kill -TERM "$WEFT_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$WEFT_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$WEFT_PID" 2>/dev/null || true
    wait "$WEFT_PID" 2>/dev/null || true
    WEFT_PID=
    # shellcheck disable=SC2034 # read by the scripts that source this file
    WEFT_ADDR=
}
