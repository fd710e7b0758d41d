#!/bin/sh
# pull-staples.sh — install fresh OCSP staples from S3 on a TLS host, safely.
#
# Mirrors the staples (aws s3 sync --delete into a staging directory beside the destination),
# checks each changed candidate with openssl (successful, good or revoked, nextUpdate far enough
# ahead, not older than the installed staple, and with --issuer a verified signature), installs the
# good ones by atomic rename keeping mode and owner, and runs the reload command when something
# changed, or when the last reload failed. A bad candidate is never installed: the old staple stays
# and the error is logged. What needs saying once (a revoked certificate, a withheld staple, a
# staple gone from S3) is said once: the state directory remembers it. POSIX sh: dash, bash,
# busybox ash.
#
# Exit codes: in usage() below (--help), the one place they are stated.
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
ON_REVOKED=${OCSP_ON_REVOKED:-install}
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
  --on-revoked WHAT      a valid revoked staple: install (default; warned once) or withhold
                         (serve none: the installed staple is removed) (OCSP_ON_REVOKED)
  --allow-revoked        the same as --on-revoked install (the default)
  --extension EXT        staple extension (OCSP_EXTENSION, default .ocsp)
  --reload CMD           run CMD (sh -c) when something changed (OCSP_RELOAD)
  --region R, --profile P, --endpoint-url URL   passed to the aws CLI (OCSP_ENDPOINT_URL)
  --aws-cli PATH         aws CLI to use, v1 or v2 (OCSP_AWS_CLI, default aws)
  --syslog               also log through logger(1) (OCSP_SYSLOG=1)
  --dry-run              download and check; install nothing, reload nothing
  --verbose              also log when nothing changed (default: quiet then, for cron) (OCSP_VERBOSE=1)
  --timeout SECS         limit for the download and for the reload, where timeout(1) exists (OCSP_TIMEOUT, 600)

A staple deleted from S3 leaves staging; its installed file is kept (a server may name it) and
reported once as orphaned. A <staple>.withheld marker in S3 removes the installed staple.
State (pending reload, what was reported) lives in DEST/.ocsp-state.

Exit codes: 0 ok (revoked, withheld and orphaned staples included: they are logged once);
  1 a candidate was rejected (old staple kept) or could not be installed or removed; 2 usage;
  3 download failed; 4 reload failed (retried on the next run); 5 destination not writable;
  75 another run holds the lock.
USAGE
}

# printable TEXT: TEXT on one line with every control character (a newline, an escape, a C1 control
# in UTF-8) shown as ?, as ls -q does: no name or message from S3 sends an escape sequence to a
# terminal or syslog.
C1_UTF8=$(printf '\302[\200-\237]')
printable() {
  printf '%s' "$1" | tr '\n' '?' | LC_ALL=C sed "s/[[:cntrl:]]/?/g; s/$C1_UTF8/?/g"
}

log() {
  line=$(printable "$*")
  printf '%s: %s\n' "$PROG" "$line" >&2
  if [ "$SYSLOG" = 1 ] && command -v logger >/dev/null 2>&1; then
    logger -t "$PROG" -- "$line" || :
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
    --on-revoked) need_arg "$1" $#; ON_REVOKED=$2; shift 2 ;;
    --allow-revoked) ON_REVOKED=install; shift ;;
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
case $ON_REVOKED in install | withhold) ;; *) die 2 "--on-revoked must be install or withhold, not '$ON_REVOKED'" ;; esac
[ -z "$ISSUER" ] || [ -r "$ISSUER" ] || die 2 "issuer file not readable: $ISSUER"
[ -z "$CAFILE" ] || [ -r "$CAFILE" ] || die 2 "CA file not readable: $CAFILE"
[ -z "$CERTDIR" ] || [ -n "$ISSUER" ] || die 2 "--cert-dir needs --issuer (the CertID is checked against it)"
command -v openssl >/dev/null 2>&1 || die 2 "openssl not found"
command -v "$AWS" >/dev/null 2>&1 || die 2 "aws CLI not found: $AWS"
case $PREFIX in '' | */) ;; *) PREFIX="$PREFIX/" ;; esac

(umask 022 && mkdir -p "$DEST") 2>/dev/null || die 5 "cannot create destination $DEST"
if [ ! -d "$DEST" ] || [ ! -w "$DEST" ]; then die 5 "destination not writable: $DEST"; fi
STAGING="$DEST/.ocsp-staging"
STATE="$DEST/.ocsp-state"
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
# staple_times FILE: "THISUPDATE PRODUCEDAT" in seconds since the epoch, read from the DER by openssl
# (never from S3 metadata); fails for a file openssl cannot read.
staple_times() {
  st_text=$(openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null) || return 1
  st_this=$(printf '%s\n' "$st_text" | sed -n 's/^ *This Update: *//p' | head -n 1)
  st_prod=$(printf '%s\n' "$st_text" | sed -n 's/^ *Produced At: *//p' | head -n 1)
  st_this=$(to_epoch "$st_this") || return 1
  st_prod=$(to_epoch "$st_prod") || return 1
  echo "$st_this $st_prod"
}

# is_older "THISUPDATE PRODUCEDAT" INSTALLED: true when INSTALLED is a readable staple and the
# candidate whose times are given (CANDIDATE_TIMES, from check_candidate) is older (thisUpdate, then
# producedAt), the renewer's replace rule. Unreadable times on either side never win.
is_older() {
  new=$1
  [ -n "$new" ] || return 1
  old=$(staple_times "$2") || return 1
  # shellcheck disable=SC2086 # two numbers each
  set -- $new $old
  [ "$1" -lt "$3" ] || { [ "$1" -eq "$3" ] && [ "$2" -lt "$4" ]; }
}

# check_candidate FILE NAME: returns 0 when FILE may be installed, setting VERDICT to good or
# revoked and CANDIDATE_TIMES as staple_times says them (empty when unreadable), else logs why and
# returns 1. A revoked staple passes every other check first: only a valid one may install (or
# withhold) anything.
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
  VERDICT=good
  for s in $certs; do
    case $s in
      good) ;;
      revoked) VERDICT=revoked ;;
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
  # Read here from the text already at hand, for is_older: not a second openssl run.
  CANDIDATE_TIMES=""
  prod=$(printf '%s\n' "$text" | sed -n 's/^ *Produced At: *//p' | head -n 1)
  if prod_epoch=$(to_epoch "$prod"); then CANDIDATE_TIMES="$this_epoch $prod_epoch"; fi
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

# --- names: keys from S3 are hostile until checked ---------------------------------------------
# find(1) prints one path a line, so a name with a newline would read as several names, one of
# them ../something. Names with a control character are therefore never listed as staples or
# markers (CNTRL prunes them and what lies below them); refuse_unlisted names them, shown with ?.
CNTRL='*[[:cntrl:]]*'
NL='
'

# refuse_unlisted: logs each downloaded file whose path holds a control character; counts them as
# rejected (nothing of theirs is installed or removed).
refuse_unlisted() {
  # NUL-separated, so a name with newlines is one name; then one a line, shown printable.
  bad=$(cd "$STAGING" && LC_ALL=C find . -type f -path "$CNTRL" -exec printf '%s\000' {} + |
    tr '\n\000' '?\n' | sed 's|^\./||')
  while IFS= read -r b; do
    [ -n "$b" ] || continue
    log "refuse $b: the name holds a control character (newline, escape…); nothing installed or removed for it"
    rejected=$((rejected + 1))
  done <<BAD
$bad
BAD
}

# safe_name REL KIND: REL is a plain relative path (no leading /, no . or .. component) that names
# a regular file in staging (KIND: staple or marker); else logs why, counts it as rejected and
# returns 1.
safe_name() {
  case /$1/ in
    //* | */./* | */../*)
      log "refuse $1: not a plain relative name (leading /, . or .. component); nothing installed or removed for it"
      rejected=$((rejected + 1))
      return 1
      ;;
  esac
  if [ ! -f "$STAGING/$1" ] || [ -L "$STAGING/$1" ]; then
    log "refuse $1: no such $2 in the download; nothing installed or removed for it"
    rejected=$((rejected + 1))
    return 1
  fi
}

# --- install -----------------------------------------------------------------------------------
# install_candidate SRC DEST_FILE: atomic rename in the destination's directory, mode and owner kept
# (never a setuid, setgid or sticky bit; a symlink is replaced by a new 0644 file, its target untouched).
install_candidate() {
  src=$1
  target=$2
  dir=$(dirname "$target")
  (umask 022 && mkdir -p "$dir") || return 1
  tmp="$dir/.$(basename "$target").tmp.$$"
  if [ -f "$target" ] && [ ! -L "$target" ]; then
    cp -p "$target" "$tmp" || return 1 # copies mode and, as root, owner
    chmod ug-s,a-t "$tmp" || { rm -f "$tmp"; return 1; }
    cat "$src" >"$tmp" || { rm -f "$tmp"; return 1; }
  else
    (umask 022 && cat "$src" >"$tmp") || { rm -f "$tmp"; return 1; }
  fi
  mv -f "$tmp" "$target" || { rm -f "$tmp"; return 1; }
}

# --- state: one name a line; what was said once is not said again ------------------------------
# in_list FILE NAME: NAME is a line of FILE.
in_list() {
  [ -f "$1" ] && grep -Fxq -e "$2" "$1"
}
# The lists of this run are built in $STATE/*.new and replace the old ones at the end (not in a
# dry run, which leaves the state alone).
new_list() {
  : >"$STATE/$1.new"
}
add_to() {
  printf '%s\n' "$2" >>"$STATE/$1.new"
}
commit_lists() {
  for l in revoked withheld orphaned older; do
    if [ "$DRY_RUN" = 1 ]; then
      rm -f "$STATE/$l.new"
    else
      mv -f "$STATE/$l.new" "$STATE/$l" || :
    fi
  done
}

# withhold NAME WHY: the host serves no staple for NAME: remove the installed one (logged once).
withhold() {
  rel=$1
  add_to withheld "$rel"
  target="$DEST/$rel"
  if [ -e "$target" ] || [ -L "$target" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      log "would remove $rel (withheld: $2)"
    elif rm -f "$target"; then
      log "withheld $rel: $2; the installed staple is removed"
      changed=$((changed + 1))
      removed=$((removed + 1))
      removed_list="$removed_list$rel$NL"
    else
      log "cannot remove withheld $rel from $DEST"
      rejected=$((rejected + 1))
    fi
  elif ! in_list "$STATE/withheld" "$rel"; then
    log "withheld $rel: $2; nothing installed"
  fi
}

# staged GLOB: the files in staging whose name matches GLOB, one relative path a line, sorted (names
# with a control character are never listed: see refuse_unlisted). Run in $(…): it changes directory.
staged() {
  cd "$STAGING" && LC_ALL=C find . -name "$CNTRL" -prune -o -type f -name "$1" -print |
    sed 's|^\./||' | sort
}

# --- main: the run, one step per function -----------------------------------------------------

# download: mirror the staples into staging (aws s3 sync); exit 3 when that fails.
download() {
  # --exact-timestamps: without it, sync S3 -> local skips a same-sized object that is newer in S3,
  # and a renewed staple is nearly always the same size as the one before. The staging copies carry
  # the objects' LastModified as mtime, so unchanged staples still match and are not downloaded.
  # --delete: staging mirrors S3, so a staple deleted there is forgotten here (not checked forever).
  set -- s3 sync "s3://$BUCKET/$PREFIX" "$STAGING" --exclude '*' --include "*$EXTENSION" \
    --include "*$EXTENSION.withheld" --exact-timestamps --delete --only-show-errors
  [ -z "$REGION" ] || set -- "$@" --region "$REGION"
  [ -z "$PROFILE" ] || set -- "$@" --profile "$PROFILE"
  [ -z "$ENDPOINT" ] || set -- "$@" --endpoint-url "$ENDPOINT"
  if sync_out=$(bounded "$AWS" "$@" 2>&1); then :; else
    code=$?
    [ "$code" -ne 124 ] || die 3 "download from s3://$BUCKET/$PREFIX timed out after ${TIMEOUT}s"
    die 3 "download from s3://$BUCKET/$PREFIX failed: $(printf '%s' "$sync_out" | tr '\n' ' ' | cut -c1-300)"
  fi
}

# withhold_marked: withheld by the renewer, a <staple>.withheld marker (short text: why) instead of
# the staple.
withhold_marked() {
  markers=$(staged "*$EXTENSION.withheld")
  while IFS= read -r marker; do
    [ -n "$marker" ] || continue
    safe_name "$marker" marker || continue
    why=$(head -n 1 "$STAGING/$marker" | tr -d '\r' | cut -c1-200)
    withhold "${marker%.withheld}" "the renewer withholds it${why:+ ($why)}"
  done <<MARKERS
$markers
MARKERS
}

# install_candidates: check and install each staple in staging that differs from the installed one.
install_candidates() {
  list=$(staged "*$EXTENSION")
  # One name a line (names may hold spaces, never a newline); the here-document keeps the loop in
  # this shell.
  while IFS= read -r rel; do
    [ -n "$rel" ] || continue
    safe_name "$rel" staple || continue
    in_list "$STATE/withheld.new" "$rel" && continue # a marker wins over a staple
    candidate="$STAGING/$rel"
    target="$DEST/$rel"
    if [ -f "$target" ] && cmp -s "$candidate" "$target"; then
      if in_list "$STATE/revoked" "$rel"; then
        if [ "$ON_REVOKED" = withhold ]; then
          withhold "$rel" "certificate REVOKED (--on-revoked withhold)"
        else
          add_to revoked "$rel"
        fi
      fi
      continue
    fi
    if ! check_candidate "$candidate" "$rel"; then
      rejected=$((rejected + 1))
      continue
    fi
    if [ "$VERDICT" = revoked ] && [ "$ON_REVOKED" = withhold ]; then
      withhold "$rel" "certificate REVOKED (--on-revoked withhold)"
      continue
    fi
    if [ -f "$target" ] && is_older "$CANDIDATE_TIMES" "$target"; then
      # Never downgrade: the installed staple is newer. Said once per candidate.
      sum=$(cksum <"$candidate")
      add_to older "$sum $rel"
      in_list "$STATE/older" "$sum $rel" ||
        log "keep $rel: the staple in S3 is older than the installed one (thisUpdate, producedAt)"
      ! in_list "$STATE/revoked" "$rel" || add_to revoked "$rel"
      continue
    fi
    if [ "$DRY_RUN" = 1 ]; then
      log "would install $rel${VERDICT:+ ($VERDICT)}"
      continue
    fi
    if install_candidate "$candidate" "$target"; then
      log "installed $rel"
      changed=$((changed + 1))
      installed_list="$installed_list$rel$NL"
      if [ "$VERDICT" = revoked ]; then
        add_to revoked "$rel"
        in_list "$STATE/revoked" "$rel" ||
          log "warning $rel: certificate REVOKED; its valid revoked staple is installed so clients learn it (--on-revoked withhold keeps it out)"
      fi
    else
      log "cannot install $rel into $DEST (old staple kept)"
      rejected=$((rejected + 1))
      ! in_list "$STATE/revoked" "$rel" || add_to revoked "$rel"
    fi
  done <<LIST
$list
LIST
}

# note_orphans: installed staples that S3 no longer has, said once.
note_orphans() {
  # Orphans: installed staples that S3 no longer has (a retired certificate). The file stays, since
  # a server configuration may still name it (nginx refuses to start without it); said once.
  installed=$(cd "$DEST" && LC_ALL=C find . \( -name '.*' ! -name . \) -prune -o -name "$CNTRL" -prune -o \
    -type f -name "*$EXTENSION" -print | sed 's|^\./||' | sort)
  while IFS= read -r rel; do
    [ -n "$rel" ] || continue
    [ ! -f "$STAGING/$rel" ] || continue
    in_list "$STATE/withheld.new" "$rel" && continue
    add_to orphaned "$rel"
    in_list "$STATE/orphaned" "$rel" ||
      log "orphaned $rel: gone from S3 (retired?), no longer renewed; the file is kept: remove it from the server configuration, then delete $DEST/$rel"
  done <<INSTALLED
$installed
INSTALLED
}

# reload_if_changed: run the reload command after a change, or retry one that failed; exit 4 when it fails.
reload_if_changed() {
  # A reload that failed is retried on every run until it succeeds, even when nothing new arrived.
  PENDING="$STATE/reload-pending"
  if [ -n "$RELOAD" ] && { [ "$changed" -gt 0 ] || [ -f "$PENDING" ]; }; then
    if [ -f "$PENDING" ]; then
      pending_installed=$(sed -n 's/^installed=//p' "$PENDING")
      pending_removed=$(sed -n 's/^removed=//p' "$PENDING")
      [ "$changed" -gt 0 ] || log "retrying the reload that failed before"
      # Only what is still true: a staple installed then is named only while its file exists, a
      # removed one only while it is gone (a reload command may read every file it is given).
      merged=""
      while IFS= read -r f; do
        if [ -n "$f" ] && [ -f "$DEST/$f" ]; then merged="$merged$f$NL"; fi
      done <<PENDING_INSTALLED
$(printf '%s\n%s\n' "$pending_installed" "$installed_list" | sort -u)
PENDING_INSTALLED
      installed_list=$merged
      merged=""
      while IFS= read -r f; do
        if [ -n "$f" ] && [ ! -e "$DEST/$f" ]; then merged="$merged$f$NL"; fi
      done <<PENDING_REMOVED
$(printf '%s\n%s\n' "$pending_removed" "$removed_list" | sort -u)
PENDING_REMOVED
      removed_list=$merged
    fi
    # One name a line (no name holds a newline: see refuse_unlisted), without a trailing newline.
    OCSP_INSTALLED=$(printf '%s' "$installed_list")
    OCSP_REMOVED=$(printf '%s' "$removed_list")
    OCSP_DEST=$DEST
    export OCSP_INSTALLED OCSP_REMOVED OCSP_DEST
    if [ "$DRY_RUN" = 1 ]; then
      log "would retry the reload that failed before: $RELOAD"
    else
      # Remembered first, one name a line: a run killed during the reload retries it too.
      if ! { printf '%s' "$installed_list" | sed 's/^/installed=/' &&
        printf '%s' "$removed_list" | sed 's/^/removed=/'; } >"$PENDING.tmp" ||
        ! mv -f "$PENDING.tmp" "$PENDING"; then
        die 5 "cannot write $PENDING"
      fi
      log "reloading: $RELOAD"
      # 9>&-: a daemon the command (re)starts must not inherit the lock and hold it forever.
      if bounded sh -c "$RELOAD" 9>&-; then
        rm -f "$PENDING"
      else
        code=$?
        [ "$code" -ne 124 ] || die 4 "reload command timed out after ${TIMEOUT}s: $RELOAD (retried on the next run)"
        die 4 "reload command failed: $RELOAD (retried on the next run)"
      fi
    fi
  elif [ -z "$RELOAD" ]; then
    rm -f "$STATE/reload-pending"
  fi
}

# say_done: the summary line.
say_done() {
  # Quiet when nothing happened, so cron mails only news; --verbose says so anyway.
  if [ "$changed" -gt 0 ] || [ "$rejected" -gt 0 ] || [ "$VERBOSE" = 1 ]; then
    [ "$removed" -eq 0 ] || removed_note=", $removed removed"
    log "done: $((changed - removed)) installed, $rejected rejected${removed_note:-}"
  fi
}

main() {
  take_lock
  mkdir -p "$STAGING" "$STATE" || die 5 "cannot create $STAGING and $STATE"
  download
  changed=0
  removed=0
  rejected=0
  installed_list=""
  removed_list=""
  for l in revoked withheld orphaned older; do new_list "$l"; done
  refuse_unlisted
  withhold_marked
  install_candidates
  note_orphans
  commit_lists
  reload_if_changed
  say_done
  [ "$rejected" -eq 0 ] || exit 1
  exit 0
}

main
