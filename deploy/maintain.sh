#!/bin/sh
# The container's stand-in for the systemd timer: `flask purge` every minute for as long as the container runs
# (compose.yaml's `maintenance` service). Any number of these may run: every step of the purge is a guarded statement.
set -u

cd "$(dirname "$0")/.."

while :; do
    flask --app app purge || echo "maintain: the purge failed; trying again in a minute" >&2
    # In the background, so a stop signal is handled at once instead of after the sleep.
    sleep "${MAINTAIN_EVERY_SECONDS:-60}" &
    wait $!
done
