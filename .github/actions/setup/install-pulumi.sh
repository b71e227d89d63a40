#!/usr/bin/env bash
# Install the Pulumi CLI from its release archive, verified against the SHA-256 pinned in
# this repository (never an installer script piped from the network: the jobs that run this
# can mint OIDC tokens for AWS roles).
#
#   install-pulumi.sh VERSION PIN_FILE CACHE_DIR INSTALL_DIR [BASE_URL]
#
# The archive is kept in CACHE_DIR (the setup action caches that directory) and checked
# against the pin on every use, cached or not, so a poisoned cache cannot slip a binary in.
# Prints the directory holding the `pulumi` binary.
set -euo pipefail

version="$1"
pins="$2"
cache="$3"
install="$4"
base="${5:-https://github.com/pulumi/pulumi/releases/download}"
archive="pulumi-v${version}-linux-x64.tar.gz"

expected="$(awk -v f="$archive" '$1 !~ /^#/ && $2 == f {print $1}' "$pins")"
if ! [[ "$expected" =~ ^[0-9a-f]{64}$ ]]; then
  echo "::error::no pinned SHA-256 for $archive in $pins; with internet access run" \
    "\`python -m scripts.pin_pulumi\` (it reads the release's checksums file) and commit it" >&2
  exit 1
fi

mkdir -p "$cache"
if [ ! -f "$cache/$archive" ] || ! echo "$expected  $cache/$archive" | sha256sum --check --status; then
  echo "downloading $archive" >&2
  # file:// only so tests can serve an archive locally; the base URL is never event data.
  curl -fsSL --proto '=https,file' --tlsv1.2 --retry 3 "$base/v$version/$archive" \
    -o "$cache/$archive.part"
  mv "$cache/$archive.part" "$cache/$archive"
fi
if ! echo "$expected  $cache/$archive" | sha256sum --check --status; then
  actual="$(sha256sum "$cache/$archive" | cut -d' ' -f1)"
  rm -f "$cache/$archive"
  echo "::error::$archive has SHA-256 $actual, but $pins pins $expected: refusing it" >&2
  exit 1
fi

target="$install/$version"
rm -rf "$target"
mkdir -p "$target"
tar -xzf "$cache/$archive" -C "$target"
"$target/pulumi/pulumi" version >&2
echo "$target/pulumi"
