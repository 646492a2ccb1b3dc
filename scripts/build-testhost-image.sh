#!/usr/bin/env bash
# Build the test-host image ($PQ_TESTHOST_IMAGE) from Debian packages, without any container registry:
# mmdebstrap writes a bookworm root file system to a tarball that `podman import` turns into an image.
# The tag is a hash of images/testhost/packages.txt and this script, so an unchanged image is reused.
#   scripts/build-testhost-image.sh [--force]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

SUITE="bookworm"
SOURCES="/etc/apt/sources.list.d/debian.sources"
# systemd reaches "running" in these containers without help; these units are masked anyway because they
# would reach for the network (apt timers), for disks or consoles the containers do not have.
MASK_UNITS=(
  apt-daily.timer apt-daily-upgrade.timer
  e2scrub_all.timer e2scrub_reap.service fstrim.timer
  systemd-remount-fs.service getty.target console-getty.service
)
# Installed for phase 3 but started only where a role configures them: Debian enables them on install,
# and an app host must not run Prometheus (nor the monitoring host an exporter it was not given).
DISABLE_UNITS=(
  prometheus.service prometheus-alertmanager.service prometheus-node-exporter.service
  prometheus-blackbox-exporter.service mtail.service
)

force=0
[[ "${1:-}" == "--force" ]] && force=1

if ((force == 0)) && podman image exists "${PQ_TESTHOST_IMAGE}"; then
  pq_log "test-host image ${PQ_TESTHOST_IMAGE} exists"
  exit 0
fi

# Mirror: the first URIs: line of the machine's own APT sources (deb822), else its first `deb` line.
mirror=""
if [[ -r "${SOURCES}" ]]; then
  mirror="$(awk '$1 == "URIs:" { print $2; exit }' "${SOURCES}")"
fi
if [[ -z "${mirror}" && -r /etc/apt/sources.list ]]; then
  mirror="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
    /etc/apt/sources.list)"
fi
[[ -n "${mirror}" ]] || pq_die "no Debian mirror found in ${SOURCES} or /etc/apt/sources.list"

packages="$(sed -e 's/#.*//' "${PQ_ROOT}/images/testhost/packages.txt" | tr -s ' \t\n' '\n' | sed '/^$/d' | paste -sd, -)"
[[ -n "${packages}" ]] || pq_die "images/testhost/packages.txt lists no packages"

pq_log "building ${PQ_TESTHOST_IMAGE} (${SUITE}, $(tr ',' '\n' <<<"${packages}" | wc -l) packages)"
t0=${EPOCHREALTIME}

# Inside the image: no docs or man pages, units that cannot work in a container masked,
# an empty machine-id (systemd derives one per container).
# shellcheck disable=SC2016  # $1 and $root are expanded by mmdebstrap's hook shell
customize='set -e
  root="$1"
  for u in '"${MASK_UNITS[*]}"'; do ln -sf /dev/null "$root/etc/systemd/system/$u"; done
  for u in '"${DISABLE_UNITS[*]}"'; do chroot "$root" systemctl disable "$u"; done
  : > "$root/etc/machine-id"
  # root lingers: its user manager keeps running between SSH logins. Otherwise the last logout stops it,
  # the stop hangs in a container until its timeout, and the next login waits for it (over a minute).
  mkdir -p "$root/var/lib/systemd/linger"
  : > "$root/var/lib/systemd/linger/root"
  rm -f "$root/var/lib/dbus/machine-id"
  chroot "$root" python3 --version
  chroot "$root" systemctl set-default multi-user.target'

tmp_tag="${PQ_TESTHOST_IMAGE}-building"
mmdebstrap \
  --quiet \
  --variant=minbase \
  --include="${packages}" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook="${customize}" \
  "${SUITE}" - "${mirror}" |
  podman import --quiet --change 'CMD ["/sbin/init"]' - "${tmp_tag}" >/dev/null
podman tag "${tmp_tag}" "${PQ_TESTHOST_IMAGE}"
podman untag "${PQ_TESTHOST_IMAGE}" "${tmp_tag}"

size="$(podman image inspect --format '{{.Size}}' "${PQ_TESTHOST_IMAGE}")"
pq_log "built ${PQ_TESTHOST_IMAGE}: $((size / 1024 / 1024)) MiB in $(awk -v a="${t0}" -v b="${EPOCHREALTIME}" 'BEGIN{printf "%.0f", b-a}')s"

# Drop older test-host images that no container uses any more.
podman images --format '{{.Repository}}:{{.Tag}}' |
  while read -r old; do
    if [[ "${old}" == localhost/peerquest-testhost:* && "${old}" != "${PQ_TESTHOST_IMAGE}" ]]; then
      if podman rmi "${old}" >/dev/null 2>&1; then
        pq_log "removed old image ${old}"
      fi
    fi
  done
