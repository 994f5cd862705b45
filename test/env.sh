#!/usr/bin/env bash
# `source ./test/env.sh` (the Ascend ADNet README's first line): the CANN environment of env_npu.sh where Ascend
# is installed; elsewhere nothing. Sourced into the user's shell, so it never exits and always returns 0.
if [ -d /usr/local/Ascend ]; then
  source "$(dirname "${BASH_SOURCE[0]:-$0}")/env_npu.sh"
fi
true
