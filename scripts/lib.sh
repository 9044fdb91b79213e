# Helpers shared by scripts/test and scripts/check-packaging (sourced, not run).
# Each installs one thing the checks need when it is missing, and says what it installed.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The build directory: cargo's target dir (as cargo itself resolves it: CARGO_TARGET_DIR,
# a config's build.target-dir, else target/), where the test tools are kept.
target_dir() {
    local dir
    dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
        | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
    [ -n "$dir" ] || { echo "error: cargo metadata did not name the target directory" >&2; exit 1; }
    echo "$dir"
}

# apt-get install, through sudo when not root. `apt-get update` runs once per script.
apt_install() {
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    if [ -z "${apt_updated:-}" ]; then
        "${sudo[@]}" apt-get update -qq
        apt_updated=1
    fi
    echo "installing $* (Debian packages)"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

# need_command COMMAND PACKAGE: installs the Debian PACKAGE when COMMAND is not on PATH.
need_command() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
    command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is still missing after installing $2" >&2; exit 1; }
}

# The virtualenv under the build directory (system Pythons refuse `pip install`, PEP 668),
# created when missing, with the pinned packages of REQUIREMENTS installed when any is not.
# NAME (default venv) is its directory there, for tools whose dependencies are kept apart.
# Prints its directory.
ensure_venv() {
    local requirements="$1" venv
    venv="$(target_dir)/${2:-venv}"
    if [ ! -x "$venv/bin/python" ]; then
        need_command python3 python3
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            apt_install python3-venv >&2
            python3 -m venv "$venv" >&2
        fi
        echo "created the virtualenv $venv" >&2
    fi
    # Reinstall only when the requirements changed since the last install.
    local stamp="$venv/.installed-$(echo "$requirements" | tr / _)"
    if ! cmp -s "$requirements" "$stamp"; then
        echo "installing $(tr '\n' ' ' <"$requirements")into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
        cp "$requirements" "$stamp"
    fi
    echo "$venv"
}
