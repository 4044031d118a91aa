#!/usr/bin/env bash
# Regenerates every prompt in sounds/en and sounds/ru from the text lists below.
#
# Output format is what the switch plays without converting: 8 kHz, mono, signed 16-bit PCM WAV.
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox). The run is deterministic:
# sox runs with -D (no dither) and -R (repeatable), so regenerating on the same tool versions
# reproduces the committed files byte for byte. Every .wav under en/ and ru/ is deleted first,
# so a name dropped from a list disappears from disk too.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# 8 kHz mono s16, no dither, repeatable random numbers (pluck synth).
SOX=(sox -D -R)
FMT=(-r 8000 -c 1 -b 16 -e signed-integer)

# speak LANG VOICE NAME PAD TEXT: synthesise TEXT into LANG/NAME.wav. espeak-ng always writes
# 22.05 kHz; sox trims espeak's leading/trailing silence, pads PAD seconds after (so number words
# concatenate without long gaps and sentences end with a short breath), resamples, and normalises
# to -3 dBFS so every prompt plays at the same loudness.
speak() {
    local lang="$1" voice="$2" name="$3" pad="$4" text="$5"
    local out="$HERE/$lang/$name.wav"
    mkdir -p "$(dirname "$out")"
    espeak-ng -v "$voice" -s 150 -w "$TMP/raw.wav" "$text"
    "${SOX[@]}" "$TMP/raw.wav" "${FMT[@]}" "$out" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.02 "$pad" gain -3 rate 8000 norm -3
}

# speak_list LANG VOICE PAD < "name|text" lines
speak_list() {
    local lang="$1" voice="$2" pad="$3" name text
    while IFS='|' read -r name text; do
        [[ -z "$name" || "$name" == \#* ]] && continue
        speak "$lang" "$voice" "$name" "$pad" "$text"
    done
}

# Hold music: a slow plucked arpeggio (C, F, G, C), 16 notes x 0.625 s = 10 s, quiet and with
# each note fading out so the loop point is seamless.
make_moh() {
    local out="$1" i=0 notes=()
    local freqs=(261.63 329.63 392.00 329.63 349.23 440.00 523.25 440.00
                 392.00 493.88 587.33 493.88 523.25 392.00 329.63 261.63)
    for f in "${freqs[@]}"; do
        "${SOX[@]}" -n "${FMT[@]}" "$TMP/note$i.wav" synth 0.625 pluck "$f" fade 0 0.625 0.4 vol 0.25
        notes+=("$TMP/note$i.wav")
        i=$((i + 1))
    done
    "${SOX[@]}" "${notes[@]}" "${FMT[@]}" "$out"
}

# The record-after-beep tone: 0.25 s of 1 kHz with 10 ms ramps (no clicks).
make_beep() {
    "${SOX[@]}" -n "${FMT[@]}" "$1" synth 0.25 sine 1000 fade 0.01 0.25 0.01 vol 0.5
}

prompts_en() {
    cat <<'EOF'
welcome|Welcome to pbx core. Press 1 to hear your number, 2 to record a message, 3 for our opening hours.
menu|Press 1 to hear your number, 2 to record a message, 3 for our opening hours.
your-number-is|Your number is
record-after-beep|Please leave your message after the beep. Press pound when you are done.
you-said|Here is your message
hours|We are open Monday to Friday from 9 to 18.
closed|We are closed at the moment.
invalid|Sorry, that is not a valid choice.
goodbye|Thank you for calling. Goodbye.
sorry|Sorry, we cannot take your call right now. Please try again later.
agent-login|You are logged in to your queues.
agent-logout|You are logged out of your queues.
agent-pause|You are paused.
agent-unpause|You are available again.
agent-refused|Sorry, this phone is not an agent of any queue.
queue-thanks|Thank you for waiting. Your call is important to us.
queue-next|You are the next caller.
vm-enter-pin|Please enter your PIN, then press pound.
vm-wrong-pin|Sorry, that PIN is not correct.
vm-no-box|This phone has no voicemail box.
vm-no-messages|You have no new messages.
vm-menu|1 repeat, 7 delete, 9 next, pound to end.
vm-deleted|Message deleted.
vm-goodbye|Goodbye.
EOF
}

# Queue announcements: fragments joined with number words (pbxcore/verbs/say.py announcement),
# so they get the short pad of the number words.
queue_en() {
    cat <<'EOF'
queue-position|You are caller number
queue-wait|Your estimated wait time is
queue-minute|minute
queue-minutes-few|minutes
queue-minutes|minutes
queue-less-than-minute|less than a minute
queue-callback-offer|To be called back instead of waiting, press
vm-you-have|New messages:
vm-message|Message
vm-from|from
vm-received|received at
EOF
}

words_en() {
    local w=(zero one two three four five six seven eight nine ten eleven twelve thirteen
             fourteen fifteen sixteen seventeen eighteen nineteen)
    local i
    for i in "${!w[@]}"; do echo "numbers/$i|${w[$i]}"; done
    for i in 0 1 2 3 4 5 6 7 8 9; do echo "digits/$i|${w[$i]}"; done
    cat <<'EOF'
digits/star|star
digits/pound|pound
numbers/20|twenty
numbers/30|thirty
numbers/40|forty
numbers/50|fifty
numbers/60|sixty
numbers/70|seventy
numbers/80|eighty
numbers/90|ninety
numbers/hundred|hundred
numbers/thousand|thousand
numbers/million|million
numbers/billion|billion
numbers/trillion|trillion
numbers/minus|minus
EOF
}

prompts_ru() {
    cat <<'EOF'
welcome|Добро пожаловать в пи би икс кор. Нажмите один, чтобы услышать свой номер, два, чтобы записать сообщение, три, чтобы узнать часы работы.
menu|Нажмите один, чтобы услышать свой номер, два, чтобы записать сообщение, три, чтобы узнать часы работы.
your-number-is|Ваш номер
record-after-beep|Оставьте сообщение после сигнала. По окончании нажмите решётку.
you-said|Вот ваше сообщение
hours|Мы работаем с понедельника по пятницу, с девяти до восемнадцати часов.
closed|Сейчас мы не работаем.
invalid|Извините, такого варианта нет.
goodbye|Спасибо за звонок. До свидания.
sorry|Извините, сейчас мы не можем принять ваш звонок. Пожалуйста, перезвоните позже.
agent-login|Вы вошли в свои очереди.
agent-logout|Вы вышли из своих очередей.
agent-pause|Вы на паузе.
agent-unpause|Вы снова доступны.
agent-refused|Извините, этот телефон не является агентом очереди.
queue-thanks|Спасибо за ожидание. Ваш звонок очень важен для нас.
queue-next|Вы следующий в очереди.
vm-enter-pin|Введите пин-код и нажмите решётку.
vm-wrong-pin|Извините, пин-код неверный.
vm-no-box|У этого телефона нет голосового ящика.
vm-no-messages|У вас нет новых сообщений.
vm-menu|Один: повтор, семь: удалить, девять: дальше, решётка: выход.
vm-deleted|Сообщение удалено.
vm-goodbye|До свидания.
EOF
}

queue_ru() {
    cat <<'EOF'
queue-position|Ваш номер в очереди
queue-wait|Примерное время ожидания
queue-minute|минута
queue-minutes-few|минуты
queue-minutes|минут
queue-less-than-minute|меньше минуты
queue-callback-offer|Чтобы мы вам перезвонили, нажмите
vm-you-have|Новых сообщений:
vm-message|Сообщение
vm-from|от
vm-received|получено в
EOF
}

words_ru() {
    local w=(ноль один два три четыре пять шесть семь восемь девять десять одиннадцать
             двенадцать тринадцать четырнадцать пятнадцать шестнадцать семнадцать
             восемнадцать девятнадцать)
    local i
    for i in "${!w[@]}"; do echo "numbers/$i|${w[$i]}"; done
    for i in 0 1 2 3 4 5 6 7 8 9; do echo "digits/$i|${w[$i]}"; done
    cat <<'EOF'
digits/star|звёздочка
digits/pound|решётка
numbers/20|двадцать
numbers/30|тридцать
numbers/40|сорок
numbers/50|пятьдесят
numbers/60|шестьдесят
numbers/70|семьдесят
numbers/80|восемьдесят
numbers/90|девяносто
numbers/100|сто
numbers/200|двести
numbers/300|триста
numbers/400|четыреста
numbers/500|пятьсот
numbers/600|шестьсот
numbers/700|семьсот
numbers/800|восемьсот
numbers/900|девятьсот
numbers/thousand_1|тысяча
numbers/thousand_2|тысячи
numbers/thousand_5|тысяч
numbers/million_1|миллион
numbers/million_2|миллиона
numbers/million_5|миллионов
numbers/billion_1|миллиард
numbers/billion_2|миллиарда
numbers/billion_5|миллиардов
numbers/trillion_1|триллион
numbers/trillion_2|триллиона
numbers/trillion_5|триллионов
numbers/1f|одна
numbers/2f|две
numbers/minus|минус
EOF
}

for lang in en ru; do
    mkdir -p "$HERE/$lang"
    find "$HERE/$lang" -name '*.wav' -type f -delete
done

prompts_en | speak_list en en-us 0.3
words_en | speak_list en en-us 0.05
queue_en | speak_list en en-us 0.05
prompts_ru | speak_list ru ru 0.3
words_ru | speak_list ru ru 0.05
queue_ru | speak_list ru ru 0.05

make_moh "$TMP/moh.wav"
make_beep "$TMP/beep.wav"
for lang in en ru; do
    cp "$TMP/moh.wav" "$TMP/beep.wav" "$HERE/$lang/"
done

echo "generated $(find "$HERE/en" "$HERE/ru" -name '*.wav' | wc -l) files," \
     "$(cat "$HERE"/en/*.wav "$HERE"/en/*/*.wav "$HERE"/ru/*.wav "$HERE"/ru/*/*.wav | wc -c) bytes"
