#!/usr/bin/env bash
# Installs the Debian packages the platform and its tests need (idempotent).
# As root it runs apt-get; otherwise it prints the exact command and stops.
set -euo pipefail

PACKAGES=(
  redis-server            # broker for Celery and the event streams
  slurm-wlm munge         # the SLURM dev cluster
  iproute2                # its --nodes N: a network namespace and veth pair per node (ip netns)
  openmpi-bin libopenmpi-dev  # mpirun + headers for mpi4py / Horovod
  postgresql              # database-layer tests against a real server
  chromium chromium-driver    # browser tests (Playwright drives /usr/bin/chromium)
  cmake g++ make          # Horovod build
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "nasforge needs these Debian packages: ${missing[*]}" >&2
  echo "Run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian starts services on install; policy-rc.d stops that, the project starts its own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
