#!/bin/bash
# The polyglot IVR in bash (same menu, same actions as ivr.py, ivr.pl, ivr.js; see README.md).
# Menu: 1 = your number read back, 2 = goodbye; anything else: "invalid" and one more try.
MENU='gather max=1 timeout=5 prompt=polyglot/menu'

case ${PBX_EVENT:-} in
    incoming | redirect)
        echo answer
        echo "$MENU"
        ;;
    gather)
        key=''
        [[ ${PBX_RESULT:-} == ok ]] && key=${PBX_DIGITS:-}
        case $key in
            1)
                number=${PBX_CALLER//[!0-9]/}   # say digits wants digits only
                echo 'play your-number-is'
                [[ -n $number ]] && echo "say digits ${number:0:32}"
                echo 'play goodbye'
                echo hangup
                ;;
            2)
                echo 'play goodbye'
                echo hangup
                ;;
            *)
                echo 'play invalid'
                if [[ ${PBX_VAR_RETRIED:-} == yes ]]; then
                    echo 'play goodbye'
                    echo hangup
                else
                    echo 'set RETRIED=yes'
                    echo "$MENU"
                fi
                ;;
        esac
        ;;
    hangup)
        caller=${PBX_CALLER//[!A-Za-z0-9+._@-]/}
        result=${PBX_RESULT//[!a-z]/}
        echo "log call ended: caller ${caller:-unknown}, result ${result:-none}"
        ;;
    *)
        echo 'log polyglot: unexpected event'
        echo hangup
        ;;
esac
