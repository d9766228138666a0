#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) so that Dawn, behind `--backend webgpu`, finds
# an adapter on a machine without a GPU: for developers and CI, to run the WebGPU path for real
# (test/head/train-webgpu.test.ts). Not for training: it runs on the CPU, ~100× slower than
# `--backend cpu`. Debian 12's own Mesa 22.3 lavapipe lacks a Vulkan feature Dawn requires
# (shaderUniform*ArrayDynamicIndexing), so it comes from bookworm-backports (Mesa 25).
# Needs root and Debian's package servers; elsewhere it says why and exits non-zero.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd* >/dev/null 2>&1 && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q bpo; then
  echo "software Vulkan (lavapipe from backports) is already installed"
  exit 0
fi
. /etc/os-release
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "setup-software-vulkan: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}; install Mesa >= 24 with lavapipe by hand" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-software-vulkan: needs root (apt-get)" >&2
  exit 1
fi
echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/headstart-backports.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
echo "software Vulkan installed: $(dpkg-query -W -f='mesa-vulkan-drivers ${Version}' mesa-vulkan-drivers)"
