#!/usr/bin/env bash
# Local sandbox: two systemd test hosts on the podman network pq-sandbox.
#   scripts/sandbox.sh up       start the hosts (reused when running), run prepare + site.yml, print where to look
#   scripts/sandbox.sh hosts    start the hosts only
#   scripts/sandbox.sh status   show the hosts
#   scripts/sandbox.sh down     remove the hosts and the network
# Expects scripts/bootstrap.sh and scripts/build-testhost-image.sh to have run (`make sandbox` does both).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${PQ_ROOT}"

NETWORK="pq-sandbox"
APP="pq-sandbox-app"
SINK="pq-sandbox-sink"
HEALTH_URL="http://127.0.0.1:8080/health/quick/"
LABEL="peerquest.sandbox=1"
# name|publish options
HOSTS=(
  "${APP}|-p 127.0.0.1:8080:8000"
  "${SINK}|-p 127.0.0.1:8025:8025"
)

wait_for_systemd() {
  local name=$1 state
  state="$(podman exec "${name}" timeout 120 systemctl is-system-running --wait || true)"
  case "${state}" in
    running) ;;
    degraded)
      pq_log "${name}: systemd degraded; failed units:"
      podman exec "${name}" systemctl --failed --no-legend >&2 || true
      ;;
    *) pq_die "${name}: systemd did not come up (state '${state}')" ;;
  esac
}

start_host() {
  local name=$1 publish=$2 image state
  if podman container exists "${name}"; then
    image="$(podman container inspect --format '{{.ImageName}}' "${name}")"
    if [[ "${image}" != "${PQ_TESTHOST_IMAGE}" ]]; then
      pq_log "${name} runs ${image}, not ${PQ_TESTHOST_IMAGE}: recreating it"
      podman rm -f "${name}" >/dev/null
    fi
  fi
  if podman container exists "${name}"; then
    state="$(podman container inspect --format '{{.State.Status}}' "${name}")"
    if [[ "${state}" == "running" ]]; then
      pq_log "${name} already running"
    else
      pq_log "starting ${name}"
      podman start "${name}" >/dev/null
    fi
  else
    pq_log "creating ${name}"
    # shellcheck disable=SC2086  # $publish holds separate options
    podman run --detach --name "${name}" --hostname "${name}" --network "${NETWORK}" \
      --systemd=always --label "${LABEL}" ${publish} \
      "${PQ_TESTHOST_IMAGE}" /sbin/init >/dev/null
  fi
}

hosts_up() {
  podman image exists "${PQ_TESTHOST_IMAGE}" \
    || pq_die "image ${PQ_TESTHOST_IMAGE} missing: run scripts/build-testhost-image.sh (or make sandbox)"
  if ! podman network exists "${NETWORK}"; then
    pq_log "creating network ${NETWORK}"
    podman network create --label "${LABEL}" "${NETWORK}" >/dev/null
  fi
  local entry
  for entry in "${HOSTS[@]}"; do
    start_host "${entry%%|*}" "${entry#*|}"
  done
  for entry in "${HOSTS[@]}"; do
    wait_for_systemd "${entry%%|*}"
  done
  pq_log "sandbox hosts up: ${APP}, ${SINK} (network ${NETWORK})"
}

deploy() {
  local f
  for f in inventory/sandbox molecule/resources/prepare.yml site.yml; do
    [[ -e "${f}" ]] || pq_die "${f} not found"
  done
  pq_log "ansible-playbook -i inventory/sandbox molecule/resources/prepare.yml"
  ansible-playbook -i inventory/sandbox molecule/resources/prepare.yml
  pq_log "ansible-playbook -i inventory/sandbox site.yml"
  ansible-playbook -i inventory/sandbox site.yml
}

show_info() {
  local code
  code="$(curl -s -o /dev/null -m 10 -w '%{http_code}' "${HEALTH_URL}" || true)"
  cat <<EOF

Sandbox is up.
  health check   curl -s ${HEALTH_URL}    (answered HTTP ${code:-none} just now)
  app logs       podman exec ${APP} ls -l /var/log/peerquest
                 podman exec ${APP} tail -f /var/log/peerquest/<file>
  app service    podman exec ${APP} systemctl status peerquest.service
  monitoring     podman exec ${APP} tail /var/log/peerquest-monitoring/monitoring.log
                 podman exec ${APP} cat /etc/cron.d/peerquest-monitoring
  shell          podman exec -it ${APP} bash      (sink: podman exec -it ${SINK} bash)
  captured mail  podman exec ${SINK} ls -lR /var/lib/pq-sink/    (webhook receiver: http://127.0.0.1:8025/)
  re-deploy      ansible-playbook -i inventory/sandbox site.yml   (after: . scripts/env.sh)
  remove         make sandbox-down
EOF
}

hosts_down() {
  local entry name
  for entry in "${HOSTS[@]}"; do
    name="${entry%%|*}"
    if podman container exists "${name}"; then
      pq_log "removing ${name}"
      podman rm -f --time 5 "${name}" >/dev/null
    fi
  done
  if podman network exists "${NETWORK}"; then
    pq_log "removing network ${NETWORK}"
    podman network rm "${NETWORK}" >/dev/null
  fi
}

case "${1:-}" in
  up)
    hosts_up
    deploy
    show_info
    ;;
  hosts) hosts_up ;;
  status) podman ps -a --filter "label=${LABEL}" ;;
  down) hosts_down ;;
  *)
    sed -n '2,7p' "$0" >&2
    exit 2
    ;;
esac
