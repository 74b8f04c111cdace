# Sourced by the scripts: ensure_venv DIR REQUIREMENTS makes a virtual environment
# with exactly these pinned packages, rebuilt only when the requirements file changes.
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
