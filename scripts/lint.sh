#!/usr/bin/env bash
# Run every linter; report all of them and exit non-zero if any failed.
#   scripts/lint.sh            (expects scripts/bootstrap.sh to have run)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "${PQ_ROOT}"

failed=()
run() {
  local name=$1
  shift
  pq_log "lint: ${name}"
  if ! "$@"; then
    failed+=("${name}")
  fi
}

shell_files=(scripts/*.sh .ci/run)

run yamllint yamllint --strict .
run ansible-lint ansible-lint --profile production
run shellcheck shellcheck --external-sources "${shell_files[@]}"
# The host commands are the peerquest_ops package (roles/peerquest_package/files): plain *.py.
run ruff ruff check .

if ((${#failed[@]})); then
  printf 'lint FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
pq_log "lint: all clean"
