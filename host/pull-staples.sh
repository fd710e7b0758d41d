#!/bin/sh
# pull-staples.sh — install fresh OCSP staples from S3 on a TLS host, safely.
#
# Downloads only changed staples (aws s3 sync into a staging directory beside the destination),
# checks each candidate with openssl (successful, good, nextUpdate far enough ahead, and with
# --issuer a verified signature), installs the good ones by atomic rename keeping mode and owner,
# and runs the reload command only when something changed. A bad candidate is never installed:
# the old staple stays and the error is logged. POSIX sh: dash, bash, busybox ash.
#
# Exit codes: 0 ok; 1 some candidate rejected (old staple kept); 2 usage error; 3 download
# failed; 4 reload failed; 5 destination not writable; 75 another run holds the lock.
set -eu

PROG=ocsp-pull
BUCKET=${OCSP_BUCKET:-}
PREFIX=${OCSP_PREFIX:-staples/}
DEST=${OCSP_DEST:-}
ISSUER=${OCSP_ISSUER:-}
CAFILE=${OCSP_CAFILE:-}
CERTDIR=${OCSP_CERT_DIR:-}
RELOAD=${OCSP_RELOAD:-}
MIN_VALIDITY=${OCSP_MIN_VALIDITY:-3600}
ALLOW_REVOKED=${OCSP_ALLOW_REVOKED:-0}
EXTENSION=${OCSP_EXTENSION:-.ocsp}
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
PROFILE=${AWS_PROFILE:-}
ENDPOINT=${OCSP_ENDPOINT_URL:-}
AWS=${OCSP_AWS_CLI:-aws}
DRY_RUN=0
VERBOSE=${OCSP_VERBOSE:-0}
TIMEOUT=${OCSP_TIMEOUT:-600}
SYSLOG=${OCSP_SYSLOG:-0}

usage() {
  cat <<USAGE
Usage: $0 --bucket B --dest DIR [options]

  --bucket B             S3 bucket (OCSP_BUCKET)
  --prefix P             key prefix of the staples (OCSP_PREFIX, default staples/)
  --dest DIR             where the server reads staples (OCSP_DEST)
  --issuer FILE          issuer certificate: also require a verified signature (OCSP_ISSUER)
  --ca-file FILE         trust anchors for that check (OCSP_CAFILE, default: the issuer)
  --cert-dir DIR         if DIR/<name>.pem exists, require the staple to be for it (OCSP_CERT_DIR)
  --min-validity SECS    refuse staples whose nextUpdate is closer than this (OCSP_MIN_VALIDITY, 3600)
  --allow-revoked        install revoked staples too (default: keep them out) (OCSP_ALLOW_REVOKED=1)
  --extension EXT        staple extension (OCSP_EXTENSION, default .ocsp)
  --reload CMD           run CMD (sh -c) when something changed (OCSP_RELOAD)
  --region R, --profile P, --endpoint-url URL   passed to the aws CLI (OCSP_ENDPOINT_URL)
  --aws-cli PATH         aws CLI to use, v1 or v2 (OCSP_AWS_CLI, default aws)
  --syslog               also log through logger(1) (OCSP_SYSLOG=1)
  --dry-run              download and check; install nothing, reload nothing
  --verbose              also log when nothing changed (default: quiet then, for cron) (OCSP_VERBOSE=1)
  --timeout SECS         limit for the download and for the reload, where timeout(1) exists (OCSP_TIMEOUT, 600)
USAGE
}

log() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  if [ "$SYSLOG" = 1 ] && command -v logger >/dev/null 2>&1; then
    logger -t "$PROG" -- "$*" || :
  fi
}

die() {
  code=$1
  shift
  log "$*"
  exit "$code"
}

need_arg() {
  [ "$2" -ge 2 ] || { usage >&2; die 2 "$1 needs a value"; }
}

while [ $# -gt 0 ]; do
  case $1 in
    --bucket) need_arg "$1" $#; BUCKET=$2; shift 2 ;;
    --prefix) need_arg "$1" $#; PREFIX=$2; shift 2 ;;
    --dest) need_arg "$1" $#; DEST=$2; shift 2 ;;
    --issuer) need_arg "$1" $#; ISSUER=$2; shift 2 ;;
    --ca-file) need_arg "$1" $#; CAFILE=$2; shift 2 ;;
    --cert-dir) need_arg "$1" $#; CERTDIR=$2; shift 2 ;;
    --min-validity) need_arg "$1" $#; MIN_VALIDITY=$2; shift 2 ;;
    --allow-revoked) ALLOW_REVOKED=1; shift ;;
    --extension) need_arg "$1" $#; EXTENSION=$2; shift 2 ;;
    --reload) need_arg "$1" $#; RELOAD=$2; shift 2 ;;
    --region) need_arg "$1" $#; REGION=$2; shift 2 ;;
    --profile) need_arg "$1" $#; PROFILE=$2; shift 2 ;;
    --endpoint-url) need_arg "$1" $#; ENDPOINT=$2; shift 2 ;;
    --aws-cli) need_arg "$1" $#; AWS=$2; shift 2 ;;
    --syslog) SYSLOG=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -v | --verbose) VERBOSE=1; shift ;;
    --timeout) need_arg "$1" $#; TIMEOUT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die 2 "unknown option: $1" ;;
  esac
done

[ -n "$BUCKET" ] || { usage >&2; die 2 "--bucket (OCSP_BUCKET) is required"; }
[ -n "$DEST" ] || { usage >&2; die 2 "--dest (OCSP_DEST) is required"; }
case $MIN_VALIDITY in '' | *[!0-9]*) die 2 "--min-validity must be a number of seconds" ;; esac
case $TIMEOUT in '' | *[!0-9]* | 0) die 2 "--timeout must be a positive number of seconds" ;; esac
[ -z "$ISSUER" ] || [ -r "$ISSUER" ] || die 2 "issuer file not readable: $ISSUER"
[ -z "$CAFILE" ] || [ -r "$CAFILE" ] || die 2 "CA file not readable: $CAFILE"
[ -z "$CERTDIR" ] || [ -n "$ISSUER" ] || die 2 "--cert-dir needs --issuer (the CertID is checked against it)"
command -v openssl >/dev/null 2>&1 || die 2 "openssl not found"
command -v "$AWS" >/dev/null 2>&1 || die 2 "aws CLI not found: $AWS"
case $PREFIX in '' | */) ;; *) PREFIX="$PREFIX/" ;; esac

(umask 022 && mkdir -p "$DEST") 2>/dev/null || die 5 "cannot create destination $DEST"
if [ ! -d "$DEST" ] || [ ! -w "$DEST" ]; then die 5 "destination not writable: $DEST"; fi
STAGING="$DEST/.ocsp-staging"
LOCK="$DEST/.ocsp-pull.lock"

# --- lock: flock where present, else mkdir with a pid file (stale locks are taken over) ---------
# shellcheck disable=SC2317 # called from traps
release_lock() {
  rm -rf "$LOCK.d" 2>/dev/null || :
}
take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK"
    flock -n 9 || die 75 "another run holds $LOCK"
    return
  fi
  if ! mkdir "$LOCK.d" 2>/dev/null; then
    holder=$(cat "$LOCK.d/pid" 2>/dev/null || echo)
    if [ -z "$holder" ]; then # just made by a run that has not written its pid yet?
      sleep 1
      holder=$(cat "$LOCK.d/pid" 2>/dev/null || echo)
    fi
    if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
      die 75 "another run (pid $holder) holds $LOCK.d"
    fi
    log "taking over a stale lock from pid ${holder:-?}"
    rm -rf "$LOCK.d"
    mkdir "$LOCK.d" 2>/dev/null || die 75 "another run holds $LOCK.d"
  fi
  echo $$ >"$LOCK.d/pid"
  trap 'release_lock' EXIT
  trap 'release_lock; exit 130' INT TERM
}

# bounded CMD...: runs CMD, killed after $TIMEOUT seconds where timeout(1) exists (coreutils,
# busybox, FreeBSD base), so a hung download or reload cannot hold the lock forever. 124 = timed out.
bounded() {
  if command -v timeout >/dev/null 2>&1; then
    timeout "$TIMEOUT" "$@"
  else
    "$@"
  fi
}

# --- time: "Nov 27 10:37:49 2026 GMT" → seconds since the epoch, in plain shell arithmetic ------
month_number() {
  case $1 in
    Jan) echo 1 ;; Feb) echo 2 ;; Mar) echo 3 ;; Apr) echo 4 ;; May) echo 5 ;; Jun) echo 6 ;;
    Jul) echo 7 ;; Aug) echo 8 ;; Sep) echo 9 ;; Oct) echo 10 ;; Nov) echo 11 ;; Dec) echo 12 ;;
    *) echo 0 ;;
  esac
}
to_epoch() {
  # shellcheck disable=SC2086 # split the date into its fields on purpose
  set -- $1
  m=$(month_number "$1")
  d=${2#0}
  y=$4
  IFS=: read -r hh mi ss <<TIME
$3
TIME
  [ "$m" -gt 0 ] || return 1
  # days from civil (H. Hinnant), valid for the Gregorian calendar
  [ "$m" -le 2 ] && y=$((y - 1))
  era=$((y / 400))
  yoe=$((y - era * 400))
  if [ "$m" -gt 2 ]; then mp=$((m - 3)); else mp=$((m + 9)); fi
  doy=$(((153 * mp + 2) / 5 + d - 1))
  doe=$((yoe * 365 + yoe / 4 - yoe / 100 + doy))
  days=$((era * 146097 + doe - 719468))
  echo $((days * 86400 + ${hh#0} * 3600 + ${mi#0} * 60 + ${ss#0}))
}

# --- checks ------------------------------------------------------------------------------------
# check_candidate FILE NAME: prints nothing, returns 0 when FILE may be installed, else logs why.
check_candidate() {
  file=$1
  name=$2
  if ! text=$(openssl ocsp -respin "$file" -resp_text -noverify 2>&1); then
    log "reject $name: not an OCSP response ($(printf '%s' "$text" | head -n 1))"
    return 1
  fi
  status=$(printf '%s\n' "$text" | sed -n 's/^ *OCSP Response Status: *\([A-Za-z]*\).*/\1/p' | head -n 1)
  if [ "$status" != successful ]; then
    log "reject $name: response status ${status:-missing}"
    return 1
  fi
  certs=$(printf '%s\n' "$text" | sed -n 's/^ *Cert Status: *\([a-z]*\).*/\1/p')
  [ -n "$certs" ] || { log "reject $name: no certificate status"; return 1; }
  for s in $certs; do
    case $s in
      good) ;;
      revoked)
        if [ "$ALLOW_REVOKED" != 1 ]; then
          log "reject $name: certificate REVOKED (use --allow-revoked to install revoked staples)"
          return 1
        fi
        log "warning $name: certificate REVOKED, installing as --allow-revoked asks" ;;
      *) log "reject $name: certificate status $s"; return 1 ;;
    esac
  done
  now=$(date -u +%s)
  this=$(printf '%s\n' "$text" | sed -n 's/^ *This Update: *//p' | head -n 1)
  if ! this_epoch=$(to_epoch "$this"); then
    log "reject $name: unreadable thisUpdate '$this'"
    return 1
  fi
  if [ $((this_epoch - now)) -gt 300 ]; then
    log "reject $name: thisUpdate $this is in the future"
    return 1
  fi
  next=$(printf '%s\n' "$text" | sed -n 's/^ *Next Update: *//p' | head -n 1)
  [ -n "$next" ] || { log "reject $name: no nextUpdate"; return 1; }
  if ! next_epoch=$(to_epoch "$next"); then
    log "reject $name: unreadable nextUpdate '$next'"
    return 1
  fi
  if [ $((next_epoch - now)) -lt "$MIN_VALIDITY" ]; then
    log "reject $name: nextUpdate $next is less than ${MIN_VALIDITY}s away"
    return 1
  fi
  if [ -n "$ISSUER" ]; then
    cafile=${CAFILE:-$ISSUER}
    # -partial_chain lets the issuer itself be the trust anchor; no -issuer flag, which would
    # make openssl retry a failed check trusting any signer.
    if ! out=$(openssl ocsp -respin "$file" -CAfile "$cafile" -verify_other "$ISSUER" -partial_chain -no-CApath 2>&1) ||
      ! printf '%s\n' "$out" | grep -q 'Response verify OK'; then
      log "reject $name: signature check failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
      return 1
    fi
  fi
  if [ -n "$CERTDIR" ] && [ -n "$ISSUER" ]; then
    base=${name%"$EXTENSION"}
    for ext in .pem .crt .cert; do
      cert="$CERTDIR/$base$ext"
      [ -r "$cert" ] || continue
      # openssl prints "<cert>: good" for a response about <cert>; fixed-string, whole-line match
      # (the \| alternation used before is a GNU extension).
      if ! out=$(openssl ocsp -respin "$file" -issuer "$ISSUER" -cert "$cert" -noverify 2>&1) ||
        ! printf '%s\n' "$out" | grep -Fxq -e "$cert: good" -e "$cert: revoked"; then
        log "reject $name: not a response for $cert"
        return 1
      fi
      break
    done
  fi
  return 0
}

# --- install -----------------------------------------------------------------------------------
# install_candidate SRC DEST_FILE: atomic rename in the destination's directory, mode and owner kept.
install_candidate() {
  src=$1
  target=$2
  dir=$(dirname "$target")
  (umask 022 && mkdir -p "$dir") || return 1
  tmp="$dir/.$(basename "$target").tmp.$$"
  if [ -e "$target" ]; then
    cp -p "$target" "$tmp" || return 1 # copies mode and, as root, owner
    cat "$src" >"$tmp" || { rm -f "$tmp"; return 1; }
  else
    (umask 022 && cat "$src" >"$tmp") || { rm -f "$tmp"; return 1; }
  fi
  mv -f "$tmp" "$target" || { rm -f "$tmp"; return 1; }
}

# --- main --------------------------------------------------------------------------------------
take_lock
mkdir -p "$STAGING" || die 5 "cannot create $STAGING"

# --exact-timestamps: without it, sync S3 -> local skips a same-sized object that is newer in S3,
# and a renewed staple is nearly always the same size as the one before. The staging copies carry
# the objects' LastModified as mtime, so unchanged staples still match and are not downloaded.
set -- s3 sync "s3://$BUCKET/$PREFIX" "$STAGING" --exclude '*' --include "*$EXTENSION" --exact-timestamps --only-show-errors
[ -z "$REGION" ] || set -- "$@" --region "$REGION"
[ -z "$PROFILE" ] || set -- "$@" --profile "$PROFILE"
[ -z "$ENDPOINT" ] || set -- "$@" --endpoint-url "$ENDPOINT"
if sync_out=$(bounded "$AWS" "$@" 2>&1); then :; else
  code=$?
  [ "$code" -ne 124 ] || die 3 "download from s3://$BUCKET/$PREFIX timed out after ${TIMEOUT}s"
  die 3 "download from s3://$BUCKET/$PREFIX failed: $(printf '%s' "$sync_out" | tr '\n' ' ' | cut -c1-300)"
fi

changed=0
rejected=0
installed_list=""
# Candidates: every staple in staging that differs from the installed one.
list=$(cd "$STAGING" && find . -type f -name "*$EXTENSION" | sed 's|^\./||' | sort)
# One name a line (names may hold spaces); the here-document keeps the loop in this shell.
while IFS= read -r rel; do
  [ -n "$rel" ] || continue
  candidate="$STAGING/$rel"
  target="$DEST/$rel"
  if [ -f "$target" ] && cmp -s "$candidate" "$target"; then
    continue
  fi
  if ! check_candidate "$candidate" "$rel"; then
    rejected=$((rejected + 1))
    continue
  fi
  if [ "$DRY_RUN" = 1 ]; then
    log "would install $rel"
    continue
  fi
  if install_candidate "$candidate" "$target"; then
    log "installed $rel"
    changed=$((changed + 1))
    installed_list="$installed_list $rel"
  else
    log "cannot install $rel into $DEST (old staple kept)"
    rejected=$((rejected + 1))
  fi
done <<LIST
$list
LIST

if [ "$changed" -gt 0 ] && [ -n "$RELOAD" ]; then
  log "reloading: $RELOAD"
  OCSP_INSTALLED=${installed_list# }
  OCSP_DEST=$DEST
  export OCSP_INSTALLED OCSP_DEST
  # 9>&-: a daemon the command (re)starts must not inherit the lock and hold it forever.
  if bounded sh -c "$RELOAD" 9>&-; then :; else
    code=$?
    [ "$code" -ne 124 ] || die 4 "reload command timed out after ${TIMEOUT}s: $RELOAD"
    die 4 "reload command failed: $RELOAD"
  fi
fi
# Quiet when nothing happened, so cron mails only news; --verbose says so anyway.
if [ "$changed" -gt 0 ] || [ "$rejected" -gt 0 ] || [ "$VERBOSE" = 1 ]; then
  log "done: $changed installed, $rejected rejected"
fi
[ "$rejected" -eq 0 ] || exit 1
exit 0
