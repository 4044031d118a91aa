#!/usr/bin/node
// The polyglot IVR in JavaScript for Node.js (same menu, same actions as ivr.sh, ivr.py, ivr.pl;
// see README.md). Menu: 1 = your number read back, 2 = goodbye; anything else: "invalid" and one
// more try. This one reads the event from the JSON on stdin instead of the environment.
'use strict';

const MENU = 'gather max=1 timeout=5 prompt=polyglot/menu';

function actions(ev) {
  const vars = ev.vars || {};
  switch (ev.event) {
    case 'incoming':
    case 'redirect':
      return ['answer', MENU];
    case 'gather': {
      const key = ev.result === 'ok' ? ev.digits : '';
      if (key === '1') {
        const number = String(ev.caller || '').replace(/[^0-9]/g, '').slice(0, 32);
        return ['play your-number-is', ...(number ? [`say digits ${number}`] : []),
          'play goodbye', 'hangup'];
      }
      if (key === '2') return ['play goodbye', 'hangup'];
      if (vars.RETRIED === 'yes') return ['play invalid', 'play goodbye', 'hangup'];
      return ['play invalid', 'set RETRIED=yes', MENU];
    }
    case 'hangup': {
      const caller = String(ev.caller || '').replace(/[^A-Za-z0-9+._@-]/g, '') || 'unknown';
      const result = String(ev.result || '').replace(/[^a-z]/g, '') || 'none';
      return [`log call ended: caller ${caller}, result ${result}`];
    }
    default:
      return ['log polyglot: unexpected event', 'hangup'];
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(actions(JSON.parse(input || '{}')).join('\n') + '\n');
});
