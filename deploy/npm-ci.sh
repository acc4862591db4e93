#!/usr/bin/env bash
# Clean install of the locked dependencies, for CI (.ci/run) and the image build
# (deploy/Dockerfile). Arguments go to npm (e.g. --ignore-scripts).
#
# npm ci refuses a lockfile that lacks entries for optional platform packages the
# registry does not publish (npm/cli#9846; here msgpackr-extract 3.0.7, whose
# darwin and win32 builds were never published), although npm install accepts
# it. Only in exactly that case this installs the locked versions with
# `npm install --no-save` and checks that the lockfile stayed as it was; any
# other mismatch (real drift between package.json and the lockfile) fails.
set -euo pipefail

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if npm ci --no-audit --no-fund "$@" </dev/null 2>&1 | tee "$log"; then
  exit 0
fi

if grep -Eq '^npm error Missing: .+@ from lock file' "$log" &&
  ! grep -Eq '^npm error (Missing: [^ ]+@[^ ]+ from lock file|Invalid: )' "$log"; then
  echo "npm-ci: npm ci refused the lockfile only for optional packages the registry does not publish (npm/cli#9846): installing the locked versions with npm install --no-save" >&2
  lock_before="$(sha256sum package-lock.json)"
  npm install --no-save --no-audit --no-fund "$@" </dev/null
  if [ "$(sha256sum package-lock.json)" != "$lock_before" ]; then
    echo "npm-ci: npm install had to change package-lock.json: it is out of date; run npm install and commit it" >&2
    exit 1
  fi
  exit 0
fi
echo "npm-ci: npm ci failed (see above)" >&2
exit 1
