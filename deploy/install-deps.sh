#!/usr/bin/env bash
# Installs every Debian package resumelb needs to build, test and run its demo.
# Idempotent; used by the README's commands and by CI. Works as root or via sudo.
#   deploy/install-deps.sh           build + test + demo packages
#   deploy/install-deps.sh --bench   also the benchmark peers (haproxy, nginx, uwsgi, ...)
#   deploy/install-deps.sh --fuzz    also clang for libFuzzer builds
set -euo pipefail

BUILD_PKGS=(cmake ninja-build g++ pkg-config git libuv1-dev libzookeeper-mt-dev rapidjson-dev
  libgoogle-glog-dev libgflags-dev catch2 libpython3.11-dev python3 python3-dev node-llhttp
  libre2-dev libssl-dev)
TEST_PKGS=(zookeeper default-jre-headless python3-flask python3-django python3-webob
  python3-pastedeploy python3.11-venv python3-kazoo python3-gunicorn curl netcat-openbsd procps
  prometheus chromium)
BENCH_PKGS=(haproxy nginx uwsgi uwsgi-plugin-python3 python3-gunicorn wrk gnuplot-nox linux-perf
  strace)
FUZZ_PKGS=(clang libclang-rt-14-dev)

pkgs=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=("${BENCH_PKGS[@]}") ;;
    --fuzz) pkgs+=("${FUZZ_PKGS[@]}") ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-deps: not root and no sudo; install as root: ${pkgs[*]}" >&2; exit 1
  fi
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
