# Sourced by the launch scripts. They `exec` their last command, so a signal sent to the script
# (SIGTERM from `timeout`, `kill PID` or a scheduler; SIGINT from Ctrl-C) reaches torchrun/srun
# itself, which stops its workers. Every earlier command runs through run_child.
#
# run_child CMD...: run CMD in its own process group, forward SIGTERM/SIGHUP/SIGINT sent to this
# script to that whole group as SIGTERM (then exit 143, or 130 for SIGINT), and return CMD's
# exit status.
run_child() {
  local child status=0
  set -m  # job control: the child gets its own process group (and keeps SIGINT)
  "$@" &
  child=$!
  set +m
  # `|| true`: under the callers' `set -e` the killed child's status (143) ended the script
  # before `exit 130`, so Ctrl-C in the first step reported a TERM
  trap 'kill -TERM -- "-$child" 2>/dev/null; wait "$child" || true; exit 143' TERM HUP
  trap 'kill -TERM -- "-$child" 2>/dev/null; wait "$child" || true; exit 130' INT
  wait "$child" || status=$?
  trap - TERM HUP INT
  return "$status"
}
