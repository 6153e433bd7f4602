# shellcheck shell=bash
# Shared helpers for scripts/services/* (kafka, ferretdb, mosquitto, ...). Source it; it defines functions only.
#
# Conventions for every service script:
#   - `start` prints exactly one line on stdout, the address to connect to, as its last line; all else to stderr.
#   - state lives in $(svc_state_root)/<service>/<port>/ (pid, port, dir, log, ...), so several instances of a
#     service can run at once and `stop ADDR` / `status` find them again from any shell.
#   - data goes to a fresh temp dir removed by `stop`, unless the caller passes its own dir.

svc_log() { printf '%s\n' "${SVC_NAME:-service}: $*" >&2; }
svc_die() {
  svc_log "error: $*"
  exit 1
}

# Root of the per-user cache (downloaded jars, built binaries).
svc_cache_root() { printf '%s\n' "${FLEETTWIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleettwin}"; }

# Root of the runtime state of running instances.
svc_state_root() { printf '%s\n' "${FLEETTWIN_SERVICES_STATE:-${TMPDIR:-/tmp}/fleettwin-services-$(id -u)}"; }

# svc_port_in_use PORT: true if any TCP socket (v4 or v6, any state) has PORT as its local port.
# Reads /proc/net/tcp{,6} so it needs no ss/netstat/python.
svc_port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" 'FNR > 1 { split($2, a, ":"); if (":" a[2] == p) { found = 1; exit } } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# svc_port_listening PORT: true if a TCP socket listens on PORT. Only a listener counts: a stopped server's
# connections may linger in TIME_WAIT on its port, which does not stop a new bind there.
svc_port_listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == p && $4 == "0A") { found = 1; exit } } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# svc_reserve_port SERVICE: prints a free loopback port and reserves it for this service by creating its state
# dir $(svc_state_root)/SERVICE/PORT atomically (mkdir), so concurrent starts never pick the same port.
svc_reserve_port() {
  svc_reserve_port_in "$(svc_state_root)/$1"
}

# svc_reserve_extra_port SERVICE PRIMARY: a second free port belonging to instance PRIMARY (e.g. a controller
# port), recorded as $(svc_state_root)/SERVICE/PRIMARY/ports/PORT.
svc_reserve_extra_port() {
  svc_reserve_port_in "$(svc_state_root)/$1/$2/ports" "$2"
}

# svc_reserve_port_in DIR [EXCEPT]: prints a free loopback port other than EXCEPT and reserves it by creating
# DIR/PORT atomically (mkdir). Ports come from 20000-32767, below Linux's default ephemeral range
# (32768-60999) used for outgoing sockets.
svc_reserve_port_in() {
  local dir=$1 except=${2:-} port i
  mkdir -p "$dir"
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    [ "$port" = "$except" ] && continue
    svc_port_in_use "$port" && continue
    # Another service's reservation for the same number (e.g. a controller port) also counts as taken.
    compgen -G "$(svc_state_root)/*/$port" >/dev/null && continue
    compgen -G "$(svc_state_root)/*/*/ports/$port" >/dev/null && continue
    if mkdir "$dir/$port" 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  svc_die "no free loopback port found"
}

# svc_port_accepts HOST PORT: true if a TCP connect succeeds now.
svc_port_accepts() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# svc_wait_port HOST PORT TIMEOUT_S [PID]: wait until HOST:PORT accepts connections. Fails early if PID dies.
svc_wait_port() {
  local host=$1 port=$2 timeout=$3 pid=${4:-} deadline
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    svc_port_accepts "$host" "$port" && return 0
    sleep 0.2
  done
  return 1
}

# svc_make_tempdir SERVICE: prints a new empty temp dir.
svc_make_tempdir() { mktemp -d "${TMPDIR:-/tmp}/fleettwin-$1.XXXXXX"; }

# svc_stop_pid PID TIMEOUT_S: SIGTERM, wait up to TIMEOUT_S, then SIGKILL. Only the given pid is signalled.
svc_stop_pid() {
  local pid=$1 timeout=$2 deadline
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    svc_log "pid $pid did not stop in ${timeout}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  return 0
}

# svc_pid_alive PID CMDLINE_SUBSTRING: true if PID runs and its command line contains the substring
# (guards against a recycled pid after a reboot or a long time).
svc_pid_alive() {
  local pid=$1 want=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -z "$want" ] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

# svc_port_of ADDR: "127.0.0.1:1234" or "1234" -> "1234".
svc_port_of() { printf '%s\n' "${1##*:}"; }

# svc_instances SERVICE: prints the ports (instance keys) with state for SERVICE, one a line.
svc_instances() {
  local root d
  root="$(svc_state_root)/$1"
  [ -d "$root" ] || return 0
  for d in "$root"/*/; do
    [ -f "$d/pid" ] || continue
    d=${d%/}
    printf '%s\n' "${d##*/}"
  done
}

# svc_tail_log FILE [LINES]: the last lines of a log, to stderr, for a failed start.
svc_tail_log() {
  local f=$1 n=${2:-60}
  [ -f "$f" ] || return 0
  printf '%s\n' "----- last $n lines of $f -----" >&2
  tail -n "$n" "$f" >&2
  printf '%s\n' "----- end of $f -----" >&2
}
