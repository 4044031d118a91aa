#!/usr/bin/perl
# The polyglot IVR in Perl (same menu, same actions as ivr.sh, ivr.py, ivr.js; see README.md).
# Menu: 1 = your number read back, 2 = goodbye; anything else: "invalid" and one more try.
use strict;
use warnings;

my $MENU = 'gather max=1 timeout=5 prompt=polyglot/menu';
sub env { my $v = $ENV{ $_[0] }; return defined $v ? $v : '' }

my $event = env('PBX_EVENT');
my @out;
if ($event eq 'incoming' || $event eq 'redirect') {
    @out = ('answer', $MENU);
}
elsif ($event eq 'gather') {
    my $key = env('PBX_RESULT') eq 'ok' ? env('PBX_DIGITS') : '';
    if ($key eq '1') {
        (my $number = env('PBX_CALLER')) =~ s/[^0-9]//g;    # say digits wants digits only
        @out = ('play your-number-is');
        push @out, 'say digits ' . substr($number, 0, 32) if length $number;
        push @out, 'play goodbye', 'hangup';
    }
    elsif ($key eq '2') {
        @out = ('play goodbye', 'hangup');
    }
    elsif (env('PBX_VAR_RETRIED') eq 'yes') {
        @out = ('play invalid', 'play goodbye', 'hangup');
    }
    else {
        @out = ('play invalid', 'set RETRIED=yes', $MENU);
    }
}
elsif ($event eq 'hangup') {
    (my $caller = env('PBX_CALLER')) =~ s/[^A-Za-z0-9+._\@-]//g;
    (my $result = env('PBX_RESULT')) =~ s/[^a-z]//g;
    @out = ('log call ended: caller ' . ($caller || 'unknown') . ', result ' . ($result || 'none'));
}
else {
    @out = ('log polyglot: unexpected event', 'hangup');
}
print map { "$_\n" } @out;
