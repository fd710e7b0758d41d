#!/bin/sh
# The Lambda function's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER, set by infra/renewer-function.ts,
# shipped beside index.mjs). The Node.js runtime's bootstrap runs it with node's whole command
# line: the node binary, the runtime's own flags, then the runtime's entry script, last. It adds
# one flag just before that last argument, so after the runtime's own, and execs node (the same
# process: no child, signals and exit codes are node's).
#
#   --max-semi-space-size=16   The runtime passes --max-semi-space-size derived from the
#                              function's memory (51 for 1024 MB, which V8 rounds up to 64 MB
#                              semi-spaces: a 128 MB young generation). This process keeps little
#                              (its old generation is ~30 MB at 10 000 certificates), but V8 grows
#                              the young generation towards that cap as a run goes on, so peak
#                              RSS would follow the cap, not the work. 16 MB semi-spaces keep a
#                              forced run over 10 000 certificates at ~200 MB RSS with the same
#                              rate (README, Performance: `npm run bench`). The last occurrence
#                              of a V8 flag wins, and NODE_OPTIONS cannot override the command
#                              line, hence a wrapper.
#
# POSIX sh: `for arg do` iterates over the arguments as they were when the loop began, so the
# list can be rebuilt with `set --` inside it.
if [ "$#" -lt 2 ]; then exec "$@"; fi
count=$#
i=0
for arg do
  i=$((i + 1))
  if [ "$i" -eq 1 ]; then set --; fi
  if [ "$i" -eq "$count" ]; then set -- "$@" --max-semi-space-size=16; fi
  set -- "$@" "$arg"
done
exec "$@"
