#!/bin/sh
# A tiny example: type a number (up to 6 digits, then # or wait), hear it read back as a number
# ("one thousand two hundred fifty"), again and again; no digits at all ends the call.
# Shows `say number` and a gather loop without any call variables.

case ${PBX_EVENT:-} in
    incoming | redirect)
        echo answer
        echo 'gather max=6 timeout=10 digit_timeout=3 finish="#" prompt=beep'
        ;;
    gather)
        case ${PBX_DIGITS:-} in
            '' | *[!0-9]*)                       # nothing, or '*' in it: done
                echo 'play goodbye'
                echo hangup
                ;;
            *)
                echo "say number $PBX_DIGITS"
                echo 'gather max=6 timeout=10 digit_timeout=3 finish="#" prompt=beep'
                ;;
        esac
        ;;
    hangup) ;;                                   # nothing to log
    *) echo hangup ;;
esac
