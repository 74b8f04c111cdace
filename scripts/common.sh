# Sourced by the scripts, from the repository root.
#
# ensure_venv DIR REQUIREMENTS makes a virtual environment with exactly these pinned
# packages, rebuilt only when the requirements file changes.
ensure_venv() {
    local dir=$1 requirements=$2
    local stamp="$dir/.requirements.sha256" wanted
    wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ ! -x "$dir/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
        echo "installing $requirements into $dir" >&2
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
        echo "$wanted" > "$stamp"
    fi
}

# cargo_target_dir: where cargo puts what it builds (honours CARGO_TARGET_DIR and
# any .cargo/config.toml build.target-dir), as cargo itself reports it.
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps 2>/dev/null \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto VENV: the pinned moto server (scripts/moto_server.py, from VENV) on a
# free loopback port, waited for; exports AWS_ENDPOINT_URL and test credentials for
# the AWS SDK and sets moto_pid. stop_moto ends it (scripts trap it on EXIT).
start_moto() {
    local venv=$1 port
    port=$(free_port)
    mkdir -p target
    "$venv/bin/python" scripts/moto_server.py "$port" > target/moto.log 2>&1 &
    moto_pid=$!
    "$venv/bin/python" - "$port" "$moto_pid" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
        break
    except Exception as error:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("moto exited at start-up; see target/moto.log")
        if time.monotonic() > deadline:
            sys.exit(f"moto did not answer within 60 s: {error}")
        time.sleep(0.2)
PY
    echo "moto on 127.0.0.1:${port} (pid ${moto_pid})" >&2
    export AWS_ENDPOINT_URL="http://127.0.0.1:${port}"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
}

stop_moto() {
    if [[ -n "${moto_pid:-}" ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
}

# unzip_functions DIR: each function's bootstrap out of the zip scripts/package made
# (<target dir>/lambda/NAME/bootstrap.zip) into DIR/NAME/bootstrap: exactly what ships.
unzip_functions() {
    local dir=$1 zip name
    for zip in "$(cargo_target_dir)"/lambda/*/bootstrap.zip; do
        name=$(basename "$(dirname "$zip")")
        mkdir -p "$dir/$name"
        python3 -m zipfile -e "$zip" "$dir/$name"
        chmod +x "$dir/$name/bootstrap"
    done
}
