#!/bin/sh
# The demo IVR in shell: the same menu as ivr.py, printing the same actions for the same event.
#
# The switch runs this once per call event with the event in PBX_* environment variables and
# reads the actions we print. An action with an outcome (gather, record, goto) ends the list;
# its outcome comes back as the next event. `set NAME=VALUE` comes back as PBX_VAR_NAME.
#
# Menu: 1 = hear your number, 2 = record a message and hear it back, 3 = opening hours.
# A wrong key or no key counts as a try; after 3 tries in a row the caller hears goodbye.
#
# Plain POSIX sh (runs under dash, bash, busybox) and no external commands: the switch gives
# scripts a minimal environment, so do not count on PATH.

MAX_TRIES=3
MENU='gather max=1 timeout=5 prompt=menu'
WELCOME='gather max=1 timeout=5 prompt=welcome'
# '#' is quoted because an unquoted '#' starts a comment in the action grammar.
RECORD='record max=30 beep=yes finish="#" silence=3'

# only PATTERN TEXT: print the characters of TEXT that match the glob bracket PATTERN.
only() {
    _rest=$2 _out=
    while [ -n "$_rest" ]; do
        _tail=${_rest#?}
        _char=${_rest%"$_tail"}
        _rest=$_tail
        # shellcheck disable=SC2254 # the pattern is meant to be a glob
        case $_char in $1) _out=$_out$_char ;; esac
    done
    printf '%s' "$_out"
}

# The TRIES call variable; anything odd (missing, '007', 'x') counts as the first try.
tries_so_far() {
    case ${PBX_VAR_TRIES:-} in
        [1-9] | [1-9][0-9] | [1-9][0-9][0-9]) printf '%s' "$PBX_VAR_TRIES" ;;
        *) printf 1 ;;
    esac
}

on_incoming() {
    echo answer
    echo 'set TRIES=1'
    echo "$WELCOME"
}

on_gather() {
    choice=${PBX_DIGITS:-}
    [ "${PBX_RESULT:-}" = ok ] || choice=''   # timeout: nothing was pressed
    case $choice in
        1)
            echo 'play your-number-is'
            number=$(only '[0-9]' "${PBX_CALLER:-}")   # say digits wants digits only
            [ -n "$number" ] && echo "say digits $number"
            echo 'set TRIES=1'
            echo "$MENU"
            ;;
        2)
            echo 'play record-after-beep'
            echo 'set TRIES=1'
            echo "$RECORD"
            ;;
        3)
            echo 'play hours'
            echo 'set TRIES=1'
            echo "$MENU"
            ;;
        *)
            tries=$(tries_so_far)
            echo 'play invalid'
            if [ "$tries" -ge "$MAX_TRIES" ]; then
                echo 'play goodbye'
                echo hangup
            else
                echo "set TRIES=$((tries + 1))"
                echo "$MENU"
            fi
            ;;
    esac
}

on_record() {
    # A path relative to the recordings directory, e.g. 2026/11/22/abc.wav. Anything with other
    # characters is not played (it would need quoting and is not what the switch produces).
    case ${PBX_RECORDING:-} in
        '' | *[!A-Za-z0-9._/-]*) ;;
        *)
            echo 'play you-said'
            echo "play recording:$PBX_RECORDING"
            ;;
    esac
    echo "$MENU"
}

on_hangup() {
    # The call is over: actions would be ignored. This is where a CRM update would go.
    caller=$(only '[A-Za-z0-9+._@-]' "${PBX_CALLER:-}")
    echo "log call ended: caller ${caller:-unknown}, tries $(tries_so_far)"
}

case ${PBX_EVENT:-} in
    incoming | redirect) on_incoming ;;   # redirect: another script sent the call here (goto)
    gather) on_gather ;;
    record) on_record ;;
    hangup) on_hangup ;;
    *)
        event=$(only '[a-z_]' "${PBX_EVENT:-}")
        echo "log ivr: unexpected event ${event:-none}"
        echo hangup
        ;;
esac
