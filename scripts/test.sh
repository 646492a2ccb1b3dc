#!/usr/bin/env bash
# Test driver.
#   scripts/test.sh all                    bootstrap, test-host image, lint, unit tests, every Molecule scenario
#   scripts/test.sh lint                   linters only
#   scripts/test.sh unit                   pytest tests/
#   scripts/test.sh molecule [NAME...]     `molecule test -s NAME` for the given (default: every) scenario
# Steps after a failed one still run (except after a failed bootstrap); a summary with each step's
# time is printed at the end and the exit status is non-zero if any step failed.
# In `all`, the unit tests and the scenarios run side by side, PQ_JOBS at a time, so that one's waits
# (cron minutes, polls, service starts) overlap another's work. Each one's output is kept in
# .cache/logs/ and printed whole when it ends, so logs don't interleave.
# Environment: PQ_MOLECULE_TIMEOUT (seconds per scenario, default 3600: side by side, each takes longer),
# PQ_JOBS (default 3: the unit tests and both scenarios at once; most of a scenario is waiting on hosts),
# PQ_LEAD_SCENARIO (default custom_site: the longest, run first at the normal CPU priority).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${PQ_ROOT}"

if [[ ! -t 1 ]]; then
  # Plain logs when output goes to a file or CI.
  export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
fi
MOLECULE_TIMEOUT="${PQ_MOLECULE_TIMEOUT:-3600}"
JOBS="${PQ_JOBS:-3}"
[[ "${JOBS}" =~ ^[1-9][0-9]*$ ]] || pq_die "PQ_JOBS must be a positive integer, got '${JOBS}'"
LOG_DIR="${PQ_ROOT}/.cache/logs"
T_START=${EPOCHREALTIME}

results=()
n_ok=0
n_failed=0

seconds_since() { awk -v a="$1" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'; }

# record NAME RC SECONDS: print and remember one step's result.
record() {
  local name=$1 rc=$2 secs=$3 status
  if ((rc == 0)); then
    status="ok"
    n_ok=$((n_ok + 1))
  else
    status="FAILED"
    n_failed=$((n_failed + 1))
  fi
  printf -- '----- %s: %s (exit %d) in %ss\n' "${name}" "${status}" "${rc}" "${secs}"
  results+=("$(printf '  %-7s %-32s %8ss' "${status}" "${name}" "${secs}")")
}

# step NAME COMMAND...: run one step in the foreground, print and record its time and result.
step() {
  local name=$1 t0 rc=0
  shift
  printf '\n===== %s =====\n' "${name}"
  t0=${EPOCHREALTIME}
  "$@" || rc=$?
  record "${name}" "${rc}" "$(seconds_since "${t0}")"
  return "${rc}"
}

# Background steps: at most JOBS at once; each writes its log and its own time to LOG_DIR.
declare -A BG_NAME=()
bg_log() { printf '%s/%s.log' "${LOG_DIR}" "${1// /_}"; }

# bg_start [--low] NAME COMMAND...: --low runs it at a lower CPU priority (nice), in the time the others leave.
bg_start() {
  local low=0 name log
  if [[ "$1" == "--low" ]]; then
    low=1
    shift
  fi
  name=$1
  shift
  while ((${#BG_NAME[@]} >= JOBS)); do bg_reap; done
  log="$(bg_log "${name}")"
  printf '\n===== %s: started (output in %s) =====\n' "${name}" "${log}"
  (
    # Inherited by everything it starts: Ansible, pytest and the podman containers it creates.
    if ((low)); then renice -n 10 -p "${BASHPID}" >/dev/null; fi
    t0=${EPOCHREALTIME}
    rc=0
    "$@" >"${log}" 2>&1 || rc=$?
    seconds_since "${t0}" >"${log}.time"
    exit "${rc}"
  ) &
  BG_NAME[$!]="${name}"
}

# Wait for the next background step to end, print its whole log and record it.
bg_reap() {
  local pid="" rc=0 name log
  wait -n -p pid "${!BG_NAME[@]}" || rc=$?
  name="${BG_NAME[${pid}]}"
  unset "BG_NAME[${pid}]"
  log="$(bg_log "${name}")"
  printf '\n===== %s =====\n' "${name}"
  cat "${log}"
  record "${name}" "${rc}" "$(cat "${log}.time" 2>/dev/null || echo '?')"
}

bg_wait_all() {
  while ((${#BG_NAME[@]} > 0)); do bg_reap; done
}

skip() {
  printf '\n===== %s: skipped (%s) =====\n' "$1" "$2"
  results+=("$(printf '  %-7s %-32s (%s)' "skipped" "$1" "$2")")
}

summary() {
  printf '\n===== summary =====\n'
  printf '%s\n' "${results[@]}"
  printf 'total time %ss\n' "$(seconds_since "${T_START}")"
  printf 'steps: %d passed, %d failed\n' "${n_ok}" "${n_failed}"
  ((n_failed == 0))
}

# pytest's exit 5 means no test was collected: nothing was checked, so the step fails.
run_unit() {
  local rc=0
  # The slowest tests in every log: where the time goes.
  pytest --durations=15 tests/ || rc=$?
  if ((rc == 5)); then
    echo "pytest: no tests were collected under tests/ (exit 5); a unit step that checks nothing fails"
  fi
  return "${rc}"
}

# Scenario names are the directories holding a molecule.yml; molecule/resources is shared material.
list_scenarios() {
  local f name
  for f in molecule/*/molecule.yml; do
    [[ -f "${f}" ]] || continue
    name="$(basename "$(dirname "${f}")")"
    [[ "${name}" == "resources" ]] && continue
    echo "${name}"
  done
}

# Ansible's own log has a time on every line: where a scenario's minutes went.
run_scenario() {
  mkdir -p "${LOG_DIR}"
  ANSIBLE_LOG_PATH="${LOG_DIR}/ansible-$1.log" timeout --kill-after=60 "${MOLECULE_TIMEOUT}" molecule test -s "$1"
}

no_scenarios() {
  echo "molecule: no scenarios found (molecule/*/molecule.yml); nothing was tested on a host"
  return 1
}

run_molecule() {
  local names=("$@") s
  if ((${#names[@]} == 0)); then
    mapfile -t names < <(list_scenarios)
  fi
  if ((${#names[@]} == 0)); then
    # Nothing tested on a host is a failure, not a pass.
    step molecule no_scenarios || true
    return 0
  fi
  for s in "${names[@]}"; do
    step "molecule ${s}" run_scenario "${s}" || true
  done
}

# Until scenario NAME (run by PID) has deployed (its verify step begins), ended, or 20 minutes passed.
wait_for_deploys() {
  local name=$1 pid=$2 log waited=0
  log="$(bg_log "molecule ${name}")"
  while ((waited < 1200)) && kill -0 "${pid}" 2>/dev/null; do
    if grep -qF "[${name} > verify] Executing" "${log}" 2>/dev/null; then return 0; fi
    sleep 5
    waited=$((waited + 5))
  done
}

# The scenarios, then the unit tests; side by side, JOBS at a time.
run_parallel() {
  local names s
  mapfile -t names < <(list_scenarios)
  if ((${#names[@]} == 0)); then
    step molecule no_scenarios || true
  fi
  mkdir -p "${LOG_DIR}"
  # The machine's load beside the steps' times: how much they contend for the cores.
  while sleep 15; do printf '%s %s\n' "$(date +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)"; done >"${LOG_DIR}/load.log" &
  local sampler=$!
  # The longest scenario (PQ_LEAD_SCENARIO) decides when the run ends: it starts first at the normal
  # CPU priority; the unit tests and the other scenarios take the time it leaves (its hosts' waits).
  local lead="${PQ_LEAD_SCENARIO:-custom_site}" lead_pid=""
  for s in "${names[@]}"; do
    if [[ "${s}" == "${lead}" ]]; then
      bg_start "molecule ${s}" run_scenario "${s}"
      lead_pid=$!
    fi
  done
  for s in "${names[@]}"; do
    if [[ "${s}" != "${lead}" ]]; then bg_start --low "molecule ${s}" run_scenario "${s}"; fi
  done
  # The unit tests start once the lead scenario's deploys are done (first deploy, idempotence): beside two
  # scenarios' deploys they made three CPU-bound jobs on two cores and tripled those deploys' time (the
  # containers' CPU shares ignore nice); its behaviour suite, mostly waits, leaves them the time.
  if [[ -n "${lead_pid}" ]]; then wait_for_deploys "${lead}" "${lead_pid}"; fi
  bg_start --low unit run_unit
  bg_wait_all
  kill "${sampler}" 2>/dev/null || true
}

main() {
  local what="${1:-all}"
  [[ $# -gt 0 ]] && shift
  case "${what}" in
    all)
      if ! step bootstrap bash scripts/bootstrap.sh; then
        summary || true
        exit 1
      fi
      local image_ok=1
      step "test-host image" bash scripts/build-testhost-image.sh || image_ok=0
      step lint bash scripts/lint.sh || true
      if ((image_ok)); then
        run_parallel
      else
        step unit run_unit || true
        skip molecule "no test-host image"
        n_failed=$((n_failed + 1))
      fi
      ;;
    lint) step lint bash scripts/lint.sh || true ;;
    unit) step unit run_unit || true ;;
    molecule) run_molecule "$@" ;;
    -h | --help)
      sed -n '2,9p' "$0"
      exit 0
      ;;
    *) pq_die "unknown command '${what}' (try --help)" ;;
  esac
  summary
}

main "$@"
