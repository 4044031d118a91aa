#!/bin/sh
# Forward while away: calls to a manager who marked themselves away go to their deputy.
#
# The switch runs this once per call event (protocol v1, docs/protocol.md) and reads the actions
# we print. The dialled number (PBX_CALLED) is the manager. Presence is a file per extension,
# status/EXT.txt, holding one word such as `lunch` (no file or `present` = present); deputies.txt
# says who stands in for whom, and the chain is followed while the deputy is away too.
#
# The decision is kept in call variables, TARGET (who takes the call, or `none`) and REASON (why
# the manager does not: `present` if they do), then `transfer $TARGET` rings that phone for
# RING_SECONDS. If nobody answers there, the `dial` event comes back: apology and goodbye.
#
# Plain POSIX sh, builtins only (the switch gives scripts a minimal environment).
# AWAY_STATUS_DIR in the route's env moves the status directory (relative to this file).

HERE=${0%/*}
[ "$HERE" = "$0" ] && HERE=.
STATUS_DIR=${AWAY_STATUS_DIR:-status}
case $STATUS_DIR in /*) ;; *) STATUS_DIR=$HERE/$STATUS_DIR ;; esac
MAX_HOPS=3
RING_SECONDS=20

# The first word of status/EXT.txt, lower-case letters, digits, - and _ only; `present` if none.
status_of() {
    _word=
    # `read` fails on a last line without newline but still fills the variables: hence `|| :`.
    [ -r "$STATUS_DIR/$1.txt" ] && { read -r _word _rest < "$STATUS_DIR/$1.txt" || :; }
    case $_word in
        '') printf present ;;
        *[!a-z0-9_-]*) printf away ;;   # anything odd still means "not here"
        *) printf '%s' "$_word" ;;
    esac
}

# The deputy of EXT from deputies.txt, or nothing.
deputy_of() {
    while read -r _manager _deputy _rest; do
        [ "$_manager" = "$1" ] && { printf '%s' "$_deputy"; return; }
    done < "$HERE/deputies.txt"
}

on_incoming() {
    manager=${PBX_CALLED:-}
    # The number becomes a file name: digits only, so no caller can reach ../anything.
    case $manager in
        '' | *[!0-9]*)
            echo 'log "forward-while-away: called number is not an extension"'
            echo 'play sorry'
            echo hangup
            return
            ;;
    esac
    target=$manager reason=present visited=" $manager " hops=0
    while :; do
        state=$(status_of "$target")
        [ "$state" = present ] && break
        [ "$target" = "$manager" ] && reason=$state
        deputy=$(deputy_of "$target")
        case $deputy in '' | *[!0-9]*) target=none; break ;; esac
        case $visited in *" $deputy "*) target=none; break ;; esac   # a circle: nobody left
        hops=$((hops + 1))
        [ "$hops" -gt "$MAX_HOPS" ] && { target=none; break; }
        visited="$visited$deputy " target=$deputy
    done

    echo "set TARGET=$target REASON=$reason"
    if [ "$target" = none ]; then
        echo 'play sorry'
        echo "log $manager is away ($reason) and so is every deputy"
        echo hangup
        return
    fi
    if [ "$target" = "$manager" ]; then
        echo "log $manager is present"
    else
        echo 'play forward-while-away/forwarding'
        echo "log $manager is away ($reason): forwarded to $target"
    fi
    echo "transfer $target timeout=$RING_SECONDS"
}

# The transfer did not connect (busy, no answer, ...): say sorry rather than ring forever.
on_dial() {
    status=${PBX_DIAL_STATUS:-}
    case $status in '' | *[!a-z]*) status=failed ;; esac
    echo "set DIAL_STATUS=$status"
    echo 'play sorry'
    echo "log transfer did not connect: $status"
    echo hangup
}

on_hangup() {
    # Only digits, `none` and status words were ever set, but the variables come back from the
    # switch: check them again before printing them.
    target=${PBX_VAR_TARGET:-} reason=${PBX_VAR_REASON:-}
    case $target in '' | *[!a-z0-9]*) target=unknown ;; esac
    case $reason in '' | *[!a-z0-9_-]*) reason=unknown ;; esac
    echo "log call ended: target $target, reason $reason"
}

case ${PBX_EVENT:-} in
    incoming | redirect) on_incoming ;;
    dial) on_dial ;;
    hangup) on_hangup ;;
    *)
        echo 'log "forward-while-away: unexpected event"'
        echo hangup
        ;;
esac
