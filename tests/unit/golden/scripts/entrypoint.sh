#!/bin/bash
# ascend-build entrypoint: load the Ascend environment (set_env.sh files), then run the command.
. /etc/profile.d/ascend-build.sh
exec "$@"
