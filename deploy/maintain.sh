#!/bin/sh
# The container's stand-in for the systemd timers: `flask purge` and `flask mail deliver` every minute for as long as
# the container runs (compose.yaml's `maintenance` service). Any number of these may run: every step of the purge is
# a guarded statement, and every message of the outbox is claimed by one deliverer.
set -u

cd "$(dirname "$0")/.."

while :; do
    flask --app app purge || echo "maintain: the purge failed; trying again in a minute" >&2
    flask --app app mail deliver || echo "maintain: mail delivery failed; trying again in a minute" >&2
    # In the background, so a stop signal is handled at once instead of after the sleep.
    sleep "${MAINTAIN_EVERY_SECONDS:-60}" &
    wait $!
done
