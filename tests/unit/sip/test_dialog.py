"""Dialogs (RFC 3261 §12) on the exchanges pyVoIP 1.6.8 and sipp 3.6.1 produce (docs/peers.md)."""

from __future__ import annotations

import pytest

from pbxcore.sip.build import make_response
from pbxcore.sip.dialog import Dialog, dialog_key
from pbxcore.sip.message import Request, Response, parse_message

CALL_ID = "3c4f1e2b9d8a7f6e5d4c3b2a1f0e9d8c@127.0.0.1:5061"

# pyVoIP's gen_invite, as sent to pbxcore (docs/peers.md §1c)
PYVOIP_INVITE = (
    "INVITE sip:2000@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK4e07408562bedb8b60ce05c1d\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:1001@127.0.0.1:5061>\r\n"
    "To: <sip:2000@127.0.0.1>\r\n"
    "From: <sip:1001@127.0.0.1>;tag=a1b2c3d4\r\n"
    f"Call-ID: {CALL_ID}\r\n"
    "CSeq: 2 INVITE\r\n"
    "Allow: INVITE, ACK, BYE, CANCEL\r\n"
    "Content-Type: application/sdp\r\n"
    "User-Agent: pyVoIP 1.6.8\r\n"
    "Content-Length: 0\r\n\r\n"
)
# pyVoIP's gen_bye for that call: Via copied from our 200, CSeq = INVITE's + 1, R-URI = our Contact
PYVOIP_BYE = (
    "BYE sip:2000@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK4e07408562bedb8b60ce05c1d\r\n"
    "From: <sip:1001@127.0.0.1>;tag=a1b2c3d4\r\n"
    "To: <sip:2000@127.0.0.1>;tag=pbx77\r\n"
    f"Call-ID: {CALL_ID}\r\n"
    "CSeq: 3 BYE\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:1001@127.0.0.1:5061>\r\n"
    "Content-Length: 0\r\n\r\n"
)
# pyVoIP's gen_ack: random To tag, R-URI from To (§1c row 3)
PYVOIP_ACK = (
    "ACK sip:2000@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK4e07408562bedb8b60ce05c1d\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:2000@127.0.0.1>;tag=9e107d9d\r\n"
    "From: <sip:1001@127.0.0.1>;tag=a1b2c3d4\r\n"
    f"Call-ID: {CALL_ID}\r\n"
    "CSeq: 2 ACK\r\n"
    "Content-Length: 0\r\n\r\n"
)


def req(text: str) -> Request:
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def resp(text: str) -> Response:
    msg = parse_message(text.encode())
    assert isinstance(msg, Response)
    return msg


def test_as_uas_from_pyvoip_invite() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE), "pbx77")
    assert d.key == (CALL_ID, "pbx77", "a1b2c3d4")
    assert (d.local_uri, d.remote_uri) == ("sip:2000@127.0.0.1", "sip:1001@127.0.0.1")
    assert d.remote_target == "sip:1001@127.0.0.1:5061"
    assert (d.route_set, d.local_cseq, d.remote_cseq, d.secure) == ([], 0, 2, False)


def test_pyvoip_bye_matches_and_ack_with_random_to_tag_matches() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE), "pbx77")
    bye = req(PYVOIP_BYE)
    assert d.matches(bye) and dialog_key(bye, local_is_uas=True) == d.key
    assert d.update_remote_cseq(bye) and d.remote_cseq == 3
    assert d.matches(req(PYVOIP_ACK))
    assert not d.matches(req(PYVOIP_BYE.replace("tag=pbx77", "tag=other")))
    assert not d.matches(req(PYVOIP_BYE.replace(CALL_ID, "x@y")))
    assert not d.matches(req(PYVOIP_BYE.replace("tag=a1b2c3d4", "tag=zzz")))


def test_out_of_order_cseq_is_refused_ack_is_not_checked() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE), "pbx77")
    assert not d.update_remote_cseq(req(PYVOIP_BYE.replace("CSeq: 3 BYE", "CSeq: 1 BYE")))
    assert d.update_remote_cseq(req(PYVOIP_ACK)) and d.remote_cseq == 2


def test_uas_bye_to_pyvoip_goes_to_its_contact_with_swapped_tags() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE), "pbx77")
    bye = d.create_request("BYE", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpbx1;rport")
    assert bye.uri == "sip:1001@127.0.0.1:5061" and "Route" not in bye.headers
    assert bye.headers.get("From") == "<sip:2000@127.0.0.1>;tag=pbx77"
    assert bye.headers.get("To") == "<sip:1001@127.0.0.1>;tag=a1b2c3d4"
    assert bye.headers.get("CSeq") == "1 BYE" and bye.headers.get("Max-Forwards") == "70"
    assert bye.call_id == CALL_ID
    assert dialog_key(bye, local_is_uas=False) == d.key
    # round trip through the parser: what we build is valid SIP
    assert req(bye.to_bytes().decode()).headers.get("CSeq") == "1 BYE"


# sipp -sn uas answering pbxcore's INVITE (its built-in scenario echoes Record-Route)
OUR_INVITE = (
    "INVITE sip:service@127.0.0.1:5099 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: \"IVR\" <sip:100@127.0.0.1>;tag=pbxA\r\n"
    "To: <sip:service@127.0.0.1:5099>\r\n"
    "Call-ID: out-42@127.0.0.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Contact: <sip:pbx@127.0.0.1:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)
SIPP_200 = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout1;rport=5060\r\n"
    "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    "From: \"IVR\" <sip:100@127.0.0.1>;tag=pbxA\r\n"
    "To: <sip:service@127.0.0.1:5099>;tag=12345SIPpTag011\r\n"
    "Call-ID: out-42@127.0.0.1\r\n"
    "CSeq: 7 INVITE\r\n"
    "Contact: <sip:127.0.0.1:5099;transport=UDP>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_as_uac_from_sipp_200_route_set_reversed() -> None:
    d = Dialog.as_uac(req(OUR_INVITE), resp(SIPP_200))
    assert d.key == ("out-42@127.0.0.1", "pbxA", "12345SIPpTag011")
    assert d.remote_target == "sip:127.0.0.1:5099;transport=UDP"
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert (d.local_cseq, d.remote_cseq) == (7, None)
    assert dialog_key(resp(SIPP_200), local_is_uas=False) == d.key


def test_uac_ack_and_bye_loose_routing() -> None:
    d = Dialog.as_uac(req(OUR_INVITE), resp(SIPP_200))
    ack = d.create_request("ACK", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack")
    assert ack.headers.get("CSeq") == "7 ACK"  # §13.2.2.4: the INVITE's number
    assert ack.uri == "sip:127.0.0.1:5099;transport=UDP"
    assert ack.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    bye = d.create_request("BYE", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye",
                           contact="sip:pbx@127.0.0.1:5060")
    assert bye.headers.get("CSeq") == "8 BYE"
    assert bye.headers.get("To") == "<sip:service@127.0.0.1:5099>;tag=12345SIPpTag011"
    assert bye.headers.get("Contact") == "<sip:pbx@127.0.0.1:5060>"


def test_strict_route_becomes_the_request_uri() -> None:
    d = Dialog.as_uac(req(OUR_INVITE), resp(SIPP_200.replace(
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        "Record-Route: <sip:p1.example.com;lr>, <sip:strict.example.com>")))
    info = d.create_request("INFO", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKi",
                            body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    assert info.uri == "sip:strict.example.com"
    assert info.headers.get_all("Route") == [
        "<sip:p1.example.com;lr>", "<sip:127.0.0.1:5099;transport=UDP>"]
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.to_bytes().endswith(b"Content-Length: 10\r\n\r\nSignal=5\r\n")


def test_as_uas_record_route_kept_in_order_and_sips_is_secure() -> None:
    text = PYVOIP_INVITE.replace("INVITE sip:2000@127.0.0.1 ", "INVITE sips:2000@127.0.0.1 ")
    text = text.replace("Max-Forwards: 70\r\n", "Max-Forwards: 70\r\n"
                        "Record-Route: <sip:a;lr>\r\nRecord-Route: <sip:b;lr>\r\n")
    d = Dialog.as_uas(req(text), "t")
    assert d.route_set == ["<sip:a;lr>", "<sip:b;lr>"] and d.secure


def test_refresh_target_and_missing_contact_fallback() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE), "pbx77")
    reinvite = req(PYVOIP_INVITE.replace("Contact: <sip:1001@127.0.0.1:5061>",
                                         "Contact: <sip:1001@192.0.2.9:5070>"))
    d.refresh_target(reinvite)
    assert d.remote_target == "sip:1001@192.0.2.9:5070"
    no_contact = make_response(req(OUR_INVITE), 200, to_tag="x")
    assert Dialog.as_uac(req(OUR_INVITE), no_contact).remote_target == "sip:service@127.0.0.1:5099"


def test_rfc2543_peer_without_from_tag() -> None:
    d = Dialog.as_uas(req(PYVOIP_INVITE.replace(";tag=a1b2c3d4", "")), "pbx77")
    assert d.remote_tag == ""
    bye = d.create_request("BYE", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb")
    assert bye.headers.get("To") == "<sip:1001@127.0.0.1>"


def test_star_contact_is_a_syntax_error() -> None:
    from pbxcore.sip.message import SipSyntaxError

    star = req(PYVOIP_INVITE.replace("Contact: <sip:1001@127.0.0.1:5061>", "Contact: *"))
    with pytest.raises(SipSyntaxError):
        Dialog.as_uas(star, "t")


def test_dialog_forming_responses_copy_record_route_in_order() -> None:
    """§12.1.1: a 18x/2xx to an INVITE carries every Record-Route of the request, in order (a
    caller behind Kamailio sends its ACK and BYE through the proxy); other answers do not."""
    raw = (b"INVITE sip:1@pbx SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKa\r\n"
           b"Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:p3;lr>\r\n"
           b"From: <sip:a@x>;tag=1\r\nTo: <sip:1@pbx>\r\nCall-ID: rr\r\nCSeq: 1 INVITE\r\n"
           b"Content-Length: 0\r\n\r\n")
    invite = parse_message(raw)
    assert isinstance(invite, Request)
    for status in (180, 200):
        assert make_response(invite, status, to_tag="t").headers.values("Record-Route") == [
            "<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert make_response(invite, 486, to_tag="t").headers.values("Record-Route") == []
    assert make_response(invite, 100).headers.values("Record-Route") == []
