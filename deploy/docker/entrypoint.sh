#!/bin/sh
# egaku reads its secrets from environment variables (the *_env keys of config.toml). Compose secrets
# arrive as files under /run/secrets: each file named like a variable becomes that variable, unless the
# environment already sets it. Then the command runs. No value is ever printed.
set -eu
secrets_dir="${EGAKU_SECRETS_DIR:-/run/secrets}"
if [ -d "$secrets_dir" ]; then
    for file in "$secrets_dir"/*; do
        [ -f "$file" ] || continue
        name=$(basename "$file")
        case "$name" in
            [!A-Za-z_]* | *[!A-Za-z0-9_]*) continue ;;
        esac
        if [ -z "$(printenv "$name" || true)" ]; then
            value=$(cat "$file")
            export "$name=$value"
        fi
    done
fi
exec "$@"
