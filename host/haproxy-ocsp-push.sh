#!/bin/sh
# haproxy-ocsp-push.sh: push changed OCSP staples into a running HAProxy through its runtime API
# (a stats socket at level admin), one staple per command. It is the --reload command of
# `ocsp-renewer renew` and of pull-staples.sh:
#
#   --reload '/usr/local/sbin/haproxy-ocsp-push.sh /run/haproxy/admin.sock'
#
# The staples: OCSP_CHANGED (full paths, one per line, as ocsp-renewer sets it), else
# OCSP_INSTALLED (names relative to OCSP_DEST, one per line, as pull-staples.sh sets it).
#
# A staple HAProxy refuses (a response for a certificate it did not load with a .ocsp file, or
# "Certificate ID does not match") is reported on stderr and not sent again: the others are still
# pushed, and the exit code stays 0, so the caller does not keep a pending reload that would send
# the same refused staple on every run. Its next renewal is pushed like any other.
# Exit 1 only when HAProxy cannot be reached (no socket, no answer): a retry is then what is wanted.
# Exit 2 on a usage error. Needs openssl, and socat or an nc with -U (OpenBSD's netcat).
set -eu

me=haproxy-ocsp-push

usage() {
  echo "usage: $me <haproxy admin socket>   (staples from OCSP_CHANGED, or OCSP_DEST + OCSP_INSTALLED)" >&2
  exit 2
}

# A name from outside, printable on one line.
printable() {
  printf '%s' "$1" | tr -c '[:print:]' '?'
}

# Sends one command line on the socket; prints HAProxy's answer.
send() {
  if command -v socat >/dev/null 2>&1; then
    socat stdio "UNIX-CONNECT:$sock"
  else
    nc -U "$sock"
  fi
}

# The staples to push, one full path per line.
staples() {
  if [ -n "${OCSP_CHANGED:-}" ]; then
    printf '%s\n' "$OCSP_CHANGED"
  else
    printf '%s\n' "${OCSP_INSTALLED:-}" | while IFS= read -r name; do
      [ -n "$name" ] || continue
      # Names are relative to OCSP_DEST (the pull script refuses others): never leave it.
      case /$name/ in
        //* | */../* | */./*)
          echo "$me: refuse $(printable "$name"): not a plain name under OCSP_DEST" >&2
          continue
          ;;
      esac
      printf '%s/%s\n' "${OCSP_DEST:?OCSP_DEST is not set}" "$name"
    done
  fi
}

[ $# -eq 1 ] || usage
sock=$1
if ! command -v socat >/dev/null 2>&1 && ! command -v nc >/dev/null 2>&1; then
  echo "$me: neither socat nor nc is installed (Debian: socat or netcat-openbsd)" >&2
  exit 1
fi

staples | {
  pushed=0
  refused=0
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    if [ ! -f "$file" ]; then
      echo "$me: $(printable "$file"): no such file; not pushed" >&2
      continue
    fi
    b64=$(openssl base64 -A -in "$file")
    if ! reply=$(printf 'set ssl ocsp-response %s\n' "$b64" | send 2>&1); then
      echo "$me: cannot reach HAProxy at $(printable "$sock"): $(printable "$reply")" >&2
      exit 1
    fi
    case $reply in
      *"OCSP Response updated"*) pushed=$((pushed + 1)) ;;
      "")
        echo "$me: HAProxy at $(printable "$sock") gave no answer for $(printable "$file")" >&2
        exit 1
        ;;
      *)
        refused=$((refused + 1))
        echo "$me: HAProxy refused $(printable "$file"): $(printf '%s' "$reply" | tr '\n' ' ' | tr -c '[:print:]' '?')" >&2
        ;;
    esac
  done
  if [ "$refused" -gt 0 ]; then
    echo "$me: pushed $pushed, refused $refused (not sent again: fix the certificate or its staple)" >&2
  fi
}
