#!/bin/sh
# The sales box's notify program: runs once per saved message (event voicemail_left).
# Mails it with the WAV attached when mutt is installed, else appends a line to a log.
# PBX_CALLER_NAME is the caller's own text: it is only ever passed as one argument.
rec="${RECORDINGS:-../../var/recordings}/$PBX_RECORDING"
subject="voicemail $PBX_VOICEMAIL_BOX from $PBX_CALLER ($PBX_RECORDING_SECONDS s)"
if command -v mutt >/dev/null 2>&1 && [ -n "$PBX_VOICEMAIL_EMAIL" ]; then
  printf 'Caller: %s %s\nTime: %s\nNew messages: %s\n' "$PBX_CALLER" "$PBX_CALLER_NAME" \
    "$PBX_VOICEMAIL_TIME" "$PBX_VOICEMAIL_NEW" | mutt -s "$subject" -a "$rec" -- "$PBX_VOICEMAIL_EMAIL"
else
  printf '%s %s\n' "$PBX_VOICEMAIL_TIME" "$subject" >> "$(dirname "$0")/voicemail.log"
fi
