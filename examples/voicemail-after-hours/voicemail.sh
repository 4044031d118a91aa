#!/bin/sh
# After hours (or when nobody answers in hours) the caller leaves a message in the sales box;
# notify.sh then mails it (see pbx.toml). NOW_HOUR overrides the clock (fixtures, testing).
hour=${NOW_HOUR:-$(date +%H)}
hour=${hour#0}
case "$PBX_EVENT" in
  incoming)
    if [ "$hour" -ge 9 ] && [ "$hour" -lt 18 ]; then
      echo "dial 1001 1002 mode=parallel timeout=20"
    else
      echo "play closed"
      echo "voicemail sales"
    fi;;
  dial)
    echo "log nobody answered ($PBX_DIAL_STATUS): voicemail"
    echo "voicemail sales";;
  voicemail)
    case "$PBX_RESULT" in
      saved) echo "log message $PBX_RECORDING ($PBX_RECORDING_SECONDS s)"; echo "play goodbye"; echo hangup;;
      too_short) echo "play goodbye"; echo hangup;;
      full) echo "log box $PBX_VOICEMAIL_BOX is full"; echo "play sorry"; echo hangup;;
      hangup) echo "log caller hung up after $PBX_RECORDING_SECONDS s";;
    esac;;
esac
