#!/usr/bin/env bash
# A stand-in for AWS's Lambda Python 3.11 base image, for `sam local` where that image
# cannot be pulled (no registry but PyPI and Debian's). Built from Debian's packages and
# PyPI only, and imported under the tag SAM CLI runs zip functions on:
#
#     public.ecr.aws/lambda/python:3.11-x86_64
#
# What SAM CLI 1.170 expects of that image (samcli/local/docker/lambda_image.py and
# lambda_container.py): it builds its own "rapid" image on top with
#     FROM public.ecr.aws/lambda/python:3.11-x86_64
#     ADD aws-lambda-rie-x86_64 /var/rapid/
#     RUN mv /var/rapid/aws-lambda-rie-x86_64 /var/rapid/aws-lambda-rie && chmod +x ...
# (so the image needs /bin/sh, mv and chmod), mounts the built function at /var/task, and
# starts `/var/rapid/aws-lambda-rie --log-level error` as the entrypoint with no command.
# The emulator (rapid) then runs /var/task/bootstrap, /opt/bootstrap or /var/runtime/bootstrap,
# the first that exists, with _HANDLER set to the function's handler: ours is the last,
# which starts awslambdaric (the runtime interface client AWS's own image runs).
#
# Usage: scripts/lambda-standin-image.sh [--force]
#   Skips everything when the tag already exists (`docker image inspect`), unless --force.
#   Needs root (debootstrap), a running Docker daemon and debootstrap (apt-get install -y
#   debootstrap). DEBIAN_MIRROR overrides the mirror (default: the one apt uses here).
# Takes about a minute and a half the first time; the image is about 150 MB.
set -euo pipefail

TAG="${LAMBDA_STANDIN_TAG:-public.ecr.aws/lambda/python:3.11-x86_64}"
SUITE=bookworm  # Debian 12: its python3.11 is the runtime's minor version
AWSLAMBDARIC_VERSION="${AWSLAMBDARIC_VERSION:-4.2.2}"

if [ "${1:-}" != "--force" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "==> $TAG is already built (scripts/lambda-standin-image.sh --force rebuilds it)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "lambda-standin-image: debootstrap needs root" >&2
  exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "==> installing debootstrap"
  apt-get install -y -q debootstrap >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
}

# The mirror apt already uses on this machine (deb822 sources first, then sources.list).
if [ -z "${DEBIAN_MIRROR:-}" ]; then
  DEBIAN_MIRROR=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' \
    /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=$(awk '/^deb / && $3 == "'$SUITE'" {print $2; exit}' \
    /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=http://deb.debian.org/debian
fi

WORK=$(mktemp -d /tmp/lambda-standin.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"

# 1. A minimal Debian root with the interpreter. minbase is essential packages plus apt;
#    python3.11 pulls libpython3.11-stdlib, libssl3, ca-certificates (for HTTPS to AWS).
echo "==> debootstrap $SUITE (minbase + python3.11) from $DEBIAN_MIRROR"
debootstrap --variant=minbase --include=python3.11,ca-certificates \
  "$SUITE" "$ROOT" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }

# 2. The runtime interface client, where AWS's image keeps it: /var/runtime. It is installed
#    with this machine's pip for CPython 3.11 on manylinux x86_64 (wheels only), so the root
#    needs no pip, compiler or network.
echo "==> awslambdaric $AWSLAMBDARIC_VERSION into /var/runtime"
mkdir -p "$ROOT/var/runtime" "$ROOT/var/task" "$ROOT/opt"
PIP=("$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python" -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || PIP=(python3 -m pip)
"${PIP[@]}" install --quiet --no-compile --target "$ROOT/var/runtime" \
  --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all: \
  "awslambdaric==$AWSLAMBDARIC_VERSION"

# 3. The bootstrap the emulator starts: awslambdaric, from the function's code directory,
#    with the handler the emulator puts in _HANDLER (handlers.api.handler, ...).
cat >"$ROOT/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Started by the Lambda runtime interface emulator (/var/rapid/aws-lambda-rie).
cd "${LAMBDA_TASK_ROOT:-/var/task}" || exit 1
exec /usr/bin/python3.11 -m awslambdaric "$_HANDLER"
BOOTSTRAP
chmod 755 "$ROOT/var/runtime/bootstrap"
# AWS's image answers to `python` and `python3` as well.
ln -sf python3.11 "$ROOT/usr/bin/python3"
ln -sf python3.11 "$ROOT/usr/bin/python"

# 4. Slim it: apt's lists and caches, docs and locales are of no use to a function.
rm -rf "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \
  "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*

# 5. Import it with the configuration AWS's image has: the code in /var/task (the working
#    directory, first on the path), the runtime's own packages in /var/runtime, layers in
#    /opt/python. SAM replaces the ENTRYPOINT with its emulator (/var/rapid/aws-lambda-rie),
#    which starts /var/runtime/bootstrap; the one given here is that bootstrap, which only
#    works under an emulator (it needs AWS_LAMBDA_RUNTIME_API).
echo "==> docker import as $TAG"
tar -C "$ROOT" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'ENV PYTHONPATH=/var/task:/var/runtime:/opt/python' \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  --message "durable: stand-in for the Lambda python3.11 image (Debian $SUITE, awslambdaric $AWSLAMBDARIC_VERSION)" \
  - "$TAG" >/dev/null
docker image inspect --format '==> built {{.RepoTags}} ({{.Size}} bytes)' "$TAG"
# SAM builds its rapid image (the emulator on top) once per base: drop any made on an older
# stand-in, so that the next `sam local` builds it on this one.
docker image rm "${TAG%-x86_64}-rapid-x86_64" >/dev/null 2>&1 || true
