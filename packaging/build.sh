#!/bin/bash
# Build the Debian package and the EL7 (XCP-ng 8.x Dom0) RPM from this checkout:
#
#   packaging/build.sh [OUTDIR]   .deb, .rpm and .src.rpm into OUTDIR (default dist/)
#   packaging/build.sh --check    only check the build tools; exit 3 if some are missing
#
# Installs nothing: it names the missing Debian packages (packaging/build-deps.txt)
# and stops. It builds from a staging copy of the checkout (tracked and untracked
# files, .gitignore respected; outside git: everything but venvs, caches, dist/),
# so the checkout is never written to, except OUTDIR.
# The vendored wheels for the RPM come from `pip download` (hash-pinned in
# packaging/vendor-requirements.txt) and are cached in TAPESHARED_WHEEL_CACHE
# (default ~/.cache/tapeshared/wheels): with the three wheels there, no network.
# rpmbuild installs them from there (pip --require-hashes); the .src.rpm holds
# only the source tarball.
# TAPESHARED_BUILD_VERBOSE=1 shows the tools' output as they run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
# Debian's own tools: a python3 from a venv or pyenv first on PATH has neither
# flit_core nor dh-python.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

die() { echo "build.sh: $*" >&2; exit 1; }

# The packages of build-deps.txt not installed; "test" or "optional" lines too
# when $1 is "all".
missing_packages() {
    local line pkg note
    while IFS= read -r line; do
        pkg=${line%%#*}
        pkg=${pkg//[[:space:]]/}
        [ -n "$pkg" ] || continue
        note=${line#"$pkg"}
        if [ "${1:-build}" != all ] && [[ $note == *"# test"* || $note == *"# optional"* ]]; then
            continue
        fi
        if ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; then
            echo "$pkg"
        fi
    done < "$here/build-deps.txt"
}

check_tools() {
    command -v dpkg-query >/dev/null 2>&1 \
        || die "needs a Debian system (dpkg-query not found); see packaging/build-deps.txt"
    local missing
    missing=$(missing_packages build | paste -sd' ' -)
    if [ -n "$missing" ]; then
        echo "build.sh: missing Debian packages: $missing" >&2
        echo "build.sh: as root: apt-get install --no-install-recommends $missing" >&2
        return 3
    fi
}

if [ "${1:-}" = --check ]; then
    check_tools && echo "build.sh: all build tools are installed"
    exit $?
fi
case "${1:-}" in -*) echo "usage: $0 [OUTDIR] | --check" >&2; exit 64 ;; esac
check_tools || exit 3

outdir=${1:-$top/dist}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/tapeshared-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Run one step, its output in a log shown on failure (or live when verbose).
step() {
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    if [ "${TAPESHARED_BUILD_VERBOSE:-0}" = 1 ]; then
        "$@" || rc=$?
    else
        "$@" > "$work/$name.log" 2>&1 || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        [ -f "$work/$name.log" ] && tail -n 60 "$work/$name.log" >&2
        die "$name failed (exit $rc)"
    fi
    echo "build.sh: $name: $(( $(date +%s) - start )) s"
}

version=$(python3 -c 'import re, sys
try:
    import tomllib
    print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])
except ImportError:  # Python < 3.11: the [project] table'"'"'s version line
    text = open(sys.argv[1]).read().split("[project]", 1)[1]
    print(re.search(r"(?m)^version\s*=\s*\"([^\"]+)\"", text).group(1))
' "$top/pyproject.toml")
[[ $version =~ ^[0-9]+(\.[0-9]+)*$ ]] \
    || die "version $version: only plain N.N.N versions map to Debian and RPM as they are"

# --- a staging copy of the checkout
src=$work/tapeshared-$version
mkdir -p "$src"
stage() {
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
            && [ "$(git -C "$top" rev-parse --show-toplevel)" = "$top" ]; then
        # Tracked and untracked files, .gitignore respected; deleted ones skipped.
        git -C "$top" ls-files -z --cached --others --exclude-standard \
            | (cd "$top" && while IFS= read -r -d '' f; do
                   [ -f "$f" ] && printf '%s\0' "$f"
               done) \
            | tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
    else
        tar -C "$top" --exclude=.git --exclude='.venv*' --exclude=dist --exclude=build \
            --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
            --exclude=.hypothesis --exclude=.mypy_cache --exclude=.ruff_cache \
            -cf - . | tar -C "$src" -xf -
    fi
    local f
    for f in pyproject.toml tapeshared/cli.py systemd/tapeshared.service init.d/tapeshared \
             packaging/tapeshared.conf packaging/tapeshared.tmpfiles \
             packaging/rpm/tapeshared-launcher; do
        [ -f "$src/$f" ] || { echo "build.sh: $f is missing from the checkout" >&2; return 1; }
    done
}
step stage stage

# Timestamps from the last commit, for reproducible archives and changelogs.
if epoch=$(git -C "$top" log -1 --format=%ct 2>/dev/null) && [ -n "$epoch" ]; then
    export SOURCE_DATE_EPOCH=$epoch
else
    SOURCE_DATE_EPOCH=$(date +%s)
    export SOURCE_DATE_EPOCH
fi

# --- the RPM: the source tarball only; rpmbuild vendors the pinned wheels
rpmtop=$work/rpmbuild
mkdir -p "$rpmtop"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
step sdist tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$SOURCE_DATE_EPOCH" -czf "$rpmtop/SOURCES/tapeshared-$version.tar.gz" \
    "tapeshared-$version"

cache=${TAPESHARED_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tapeshared/wheels}
mkdir -p "$cache"
hashes=$(grep -o 'sha256:[0-9a-f]*' "$here/vendor-requirements.txt" | cut -d: -f2)
# True when every pinned wheel (found by its hash) is in the cache.
cached_vendored() {
    local h f found
    for h in $hashes; do
        found=
        for f in "$cache"/*.whl; do
            [ -f "$f" ] || continue
            if [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$h" ]; then
                found=1
                break
            fi
        done
        [ -n "$found" ] || return 1
    done
}
if ! cached_vendored 2>/dev/null; then
    step vendor-download python3 -m pip download --disable-pip-version-check --no-deps \
        --only-binary=:all: --python-version 3.6 --implementation cp --require-hashes \
        -d "$cache" -r "$here/vendor-requirements.txt"
    cached_vendored || die "the downloaded wheels do not match packaging/vendor-requirements.txt"
fi

sed "s/@VERSION@/$version/g" "$here/rpm/tapeshared.spec" > "$rpmtop/SPECS/tapeshared.spec"
# --nodeps: BuildRequires name EL7 packages, which Debian's rpm database lacks;
# check_tools has checked the real build tools.
step rpmbuild rpmbuild -ba --nodeps --define "_topdir $rpmtop" --define "dist .el7" \
    --define "tapeshared_wheelhouse $cache" \
    --define "use_source_date_epoch_as_buildtime 1" "$rpmtop/SPECS/tapeshared.spec"

# --- the Debian package: packaging/debian as debian/; its changelog, like the
# spec's %changelog, names pyproject.toml's version (a release updates all three)
cp -r "$here/debian" "$src/debian"
deb_version=$(sed -n '1s/^tapeshared (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ "$deb_version" = "$version" ] \
    || die "packaging/debian/changelog is at $deb_version, pyproject.toml at $version"
debbuild() { (cd "$src" && dpkg-buildpackage -b -us -uc); }
step dpkg-buildpackage debbuild

rpm=$rpmtop/RPMS/noarch/tapeshared-$version-1.el7.noarch.rpm
srpm=$rpmtop/SRPMS/tapeshared-$version-1.el7.src.rpm
deb=$work/tapeshared_${version}_all.deb
for f in "$rpm" "$srpm" "$deb"; do
    [ -f "$f" ] || die "expected $f was not built"
    cp "$f" "$outdir/"
    echo "build.sh: built $outdir/$(basename "$f")"
done
