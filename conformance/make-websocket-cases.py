#!/usr/bin/env python3
# Writes conformance/cases/websocket/*.case: the client side of each WebSocket case (masked
# frames spelled as escapes, mask 37 fa 21 3d). The expectations are then filled in with
# `weft-conformance --filter websocket/ --bless` and reviewed by hand.
import os, struct
D=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cases', 'websocket')
MASK=bytes([0x37,0xfa,0x21,0x3d])
def frame(op, payload=b'', fin=True, mask=True, rsv=0, length_form=None):
    b0=(0x80 if fin else 0)|rsv<<4|op
    n=len(payload)
    if length_form==64 or (length_form is None and n>65535):
        hdr=bytes([b0,(0x80 if mask else 0)|127])+struct.pack('>Q',n)
    elif length_form==16 or (length_form is None and n>125):
        hdr=bytes([b0,(0x80 if mask else 0)|126])+struct.pack('>H',n)
    else:
        hdr=bytes([b0,(0x80 if mask else 0)|n])
    if mask:
        return hdr+MASK+bytes(p^MASK[i%4] for i,p in enumerate(payload))
    return hdr+payload
def close(code=None, reason=b''):
    return frame(8, (struct.pack('>H',code) if code is not None else b'')+reason)
def toks(b):
    return [chr(c) if (0x21<=c<0x7f and c not in (0x5c,0x23)) else '\\x%02x'%c for c in b]
def esc(b):
    return ''.join(toks(b))
def hs(path='/ws/echo', extra=''):
    return ('GET %s HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n'
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n%s\\r\\n') % (path, extra)
def case(name, desc, sends, tail='expect-open', modes=None, extra=''):
    lines=['desc: '+desc]
    if modes: lines.append('modes: '+modes)
    for s in sends:
        if isinstance(s,str): lines.append('send: '+s)
        else:
            t=toks(s)
            # split long payloads over continuation lines (never inside an escape)
            chunks=[''.join(t[i:i+40]) for i in range(0,len(t),40)] or ['']
            lines.append('send: '+chunks[0])
            lines += ['+ '+c for c in chunks[1:]]
    lines.append('expect:')
    if tail: lines.append(tail)
    open(os.path.join(D,name+'.case'),'w').write('\n'.join(lines)+'\n')

H=hs()
case('handshake-101','a valid handshake is answered 101 with the RFC 6455 section 1.3 accept key; the session stays open',[H])
case('handshake-and-frame-one-write','a frame sent in the same write as the handshake (leftover bytes of the upgrade) is echoed',[H+esc(frame(1,b'Hello'))])
case('echo-text-rfc-example','the masked "Hello" of RFC 6455 section 5.7 comes back unmasked',[H, bytes.fromhex('818537fa213d7f9f4d5158')])
case('echo-binary-16bit-length','a 200-byte binary message (16-bit length form) is echoed',[H, frame(2, bytes(range(200)))])
case('echo-binary-64bit-length','a 64-bit length form announcing 5 bytes (non-minimal, allowed) is accepted and echoed',[H, frame(2,b'abcde',length_form=64)])
case('echo-empty-text','an empty text message is echoed',[H, frame(1,b'')])
case('fragmented-text','a text message in three fragments is echoed as one message',[H, frame(1,b'Hel',fin=False)+frame(0,b'lo, ',fin=False)+frame(0,b'world')])
case('ping-inside-fragmented','a ping between fragments is answered at once, then the whole message',[H, frame(1,b'frag',fin=False)+frame(9,b'ping!')+frame(0,b'mented')])
case('ping-pong','a ping is answered with a pong carrying the same payload',[H, frame(9,b'are you there?')])
case('pong-unsolicited','an unsolicited pong is ignored; the next message is echoed',[H, frame(10,b'x')+frame(1,b'after pong')])
case('utf8-split-across-fragments','a euro sign split across two fragments is valid text and is echoed',[H, frame(1,b'price: \xe2\x82',fin=False)+frame(0,b'\xac 5')])
case('unmasked-frame-1002','an unmasked client frame is a protocol error: close 1002 and the server closes',[H, frame(1,b'Hello',mask=False)],tail='expect-close')
case('reserved-opcode-1002','opcode 3 is reserved: close 1002',[H, frame(3,b'x')],tail='expect-close')
case('reserved-control-opcode-1002','opcode 0xB is reserved: close 1002',[H, frame(0xb,b'')],tail='expect-close')
case('rsv1-without-extension-1002','RSV1 set without a negotiated extension: close 1002',[H, frame(1,b'x',rsv=4)],tail='expect-close')
case('rsv2-1002','RSV2 set: close 1002',[H, frame(1,b'x',rsv=2)],tail='expect-close')
case('bad-utf8-1007','a text message that is not UTF-8 closes with 1007',[H, frame(1,b'ab\xff')],tail='expect-close')
case('bad-utf8-across-fragments-1007','an invalid sequence completed in a later fragment closes with 1007',[H, frame(1,b'\xce',fin=False)+frame(0,b'\x41')],tail='expect-close')
case('truncated-utf8-at-end-1007','a text message ending inside a character closes with 1007',[H, frame(1,b'abc\xe2\x82')],tail='expect-close')
case('surrogate-utf8-1007','an encoded UTF-16 surrogate (ED A0 80) is not UTF-8: 1007',[H, frame(1,b'\xed\xa0\x80')],tail='expect-close')
case('continuation-without-start-1002','a continuation frame with no message started: close 1002',[H, frame(0,b'lost')],tail='expect-close')
case('new-message-inside-fragmented-1002','a text frame while a fragmented message is in progress: close 1002',[H, frame(1,b'a',fin=False)+frame(1,b'b')],tail='expect-close')
case('fragmented-ping-1002','a ping without FIN (control frames cannot be fragmented): close 1002',[H, frame(9,b'p',fin=False)],tail='expect-close')
case('long-ping-1002','a ping with a 126-byte payload (control frames carry at most 125): close 1002',[H, frame(9,b'p'*126)],tail='expect-close')
case('close-normal','the client closes with 1000 and a reason: the server answers 1000 and closes TCP',[H, close(1000,b'bye')],tail='expect-close')
case('close-empty','a close without a payload is answered with an empty-code close (1000) and TCP close',[H, close()],tail='expect-close')
case('close-code-3000','an application close code (3000) is valid and echoed',[H, close(3000)],tail='expect-close')
case('close-code-1005-1002','close code 1005 must not be sent on the wire: close 1002',[H, close(1005)],tail='expect-close')
case('close-code-999-1002','close code 999 is invalid: close 1002',[H, close(999)],tail='expect-close')
case('close-one-byte-1002','a close payload of one byte: close 1002',[H, frame(8,b'\x03')],tail='expect-close')
case('close-bad-utf8-reason-1007','a close reason that is not UTF-8: close 1007',[H, close(1000,b'\xff')],tail='expect-close')
case('messages-after-close-ignored','after the client close, a further frame gets no echo',[H, close(1000)+frame(1,b'late')],tail='expect-close')
case('pipelined-messages','three messages in one write are echoed in order',[H, frame(1,b'one')+frame(2,b'two')+frame(1,b'three')])
case('chat-own-broadcast','a chat member receives its own message (broadcast to every member, the sender included)',[hs("/ws/chat?room=own"), frame(1,b'hello room')])
case('chat-binary-1003','the chat room takes text only: a binary message gets Close 1003; the client answers Close and the server closes TCP',[hs("/ws/chat?room=binary"), frame(2,b'\x00\x01')+close(1003)],tail='expect-close')
case('chat-oversized-frame-1009','a chat frame announcing more than 64 KiB closes with 1009 before the payload arrives',[hs("/ws/chat?room=oversized"), bytes([0x81,0xff])+struct.pack('>Q',100000)+MASK],tail='expect-close')
case('oversized-64bit-msb-1002','a 64-bit length with the most significant bit set: close 1002',[H, bytes([0x82,0xff,0x80,0,0,0,0,0,0,1])+MASK],tail='expect-close')
# handshake errors (HTTP answers)
def raw(name, desc, req, tail='expect-open'):
    open(os.path.join(D,name+'.case'),'w').write('desc: %s\nsend: %s\nexpect:\n%s\n'%(desc,req,tail))
raw('handshake-missing-key-400','a handshake without Sec-WebSocket-Key is 400','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
raw('handshake-short-key-400','a Sec-WebSocket-Key that is not base64 of 16 bytes is 400','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: c2hvcnQ=\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
raw('handshake-version-8-426','Sec-WebSocket-Version 8 is answered 426 with Sec-WebSocket-Version: 13','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 8\\r\\n\\r\\n')
raw('handshake-missing-version-426','a handshake without Sec-WebSocket-Version is 426','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n\\r\\n')
raw('plain-get-426','a plain GET of a WebSocket endpoint is 426 Upgrade Required','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')
raw('connection-token-list','Connection: keep-alive, Upgrade (a token list, any case) is a valid handshake','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: WebSocket\\r\\nConnection: keep-alive, UPGRADE\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
raw('missing-connection-upgrade-400','Upgrade: websocket without Connection: upgrade is 400','GET /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
raw('post-405','POST to a WebSocket endpoint is 405','POST /ws/echo HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 0\\r\\n\\r\\n')
raw('http10-handshake-400','a handshake over HTTP/1.0 is refused','GET /ws/echo HTTP/1.0\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n', tail='expect-close')
# permessage-deflate
PMD='Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\\r\\n'
case('deflate-negotiated','a permessage-deflate offer is accepted',[hs(extra=PMD)])
case('deflate-rfc7692-hello','the compressed "Hello" of RFC 7692 section 7.2.3.1 is inflated and echoed (compressed)',[hs(extra=PMD), frame(1,bytes.fromhex('f248cdc9c90700'),rsv=4)])
case('deflate-uncompressed-message','with deflate negotiated, a message without RSV1 is plain text',[hs(extra=PMD), frame(1,b'plain')])
case('deflate-rsv1-on-continuation-1002','RSV1 on a continuation frame: close 1002',[hs(extra=PMD), frame(1,bytes.fromhex('f248'),fin=False,rsv=4)+frame(0,bytes.fromhex('cdc9c90700'),rsv=4)],tail='expect-close')
case('deflate-fragmented','a compressed message in two fragments (RSV1 on the first only) is echoed',[hs(extra=PMD), frame(1,bytes.fromhex('f248cd'),fin=False,rsv=4)+frame(0,bytes.fromhex('c9c90700'))])
case('deflate-server-no-context-takeover','server_no_context_takeover is accepted and echoed in the response',[hs(extra='Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\\r\\n'), frame(1,bytes.fromhex('f248cdc9c90700'),rsv=4)+frame(1,bytes.fromhex('f248cdc9c90700'),rsv=4)])
case('deflate-unknown-param-declined','an offer with an unknown parameter is declined: no extension, plain session',[hs(extra='Sec-WebSocket-Extensions: permessage-deflate; foo=1\\r\\n'), frame(1,b'plain')])
case('deflate-second-offer','the first acceptable of two offers wins',[hs(extra='Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover\\r\\n')])

TEXT=b'the quick brown fox jumps over the lazy dog; '*8
case('deflate-large-echo-compressed','with deflate negotiated, a 360-byte repetitive text comes back compressed (RSV1 set)',[hs(extra=PMD), frame(1,TEXT)])
case('deflate-small-window-rle','server_max_window_bits=10: the reply is still compressed, with matches a 1 KiB window can decode',[hs(extra='Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\\r\\n'), frame(1,TEXT)])
case('deflate-context-takeover-two-messages','the second compressed reply may refer to the first (context takeover)',[hs(extra=PMD), frame(1,TEXT)+frame(1,TEXT)])
# Idle pings (the harness starts weft with --ws-ping-interval 2 --ws-ping-timeout 1).
def idle(name, desc, steps, settings, tail):
    lines=['desc: '+desc]+settings
    for s in steps:
        lines.append(s if s.startswith('wait:') else 'send: '+s)
    lines += ['expect:', tail]
    open(os.path.join(D,name+'.case'),'w').write('\n'.join(lines)+'\n')
idle('idle-ping-unanswered-1001','an idle session is pinged after 2 s; with no answer it gets Close 1001 "ping timeout" 1 s later, and TCP is closed after the close timeout',
     [H], ['modes: whole','timeout: 12s','quiet: 9s'], 'expect-close')
idle('idle-ping-answered-stays-open','a session that answers the idle ping with a pong is pinged again and stays open',
     [H,'wait: 2500ms',esc(frame(10,b'weft')),'wait: 2500ms'], ['modes: whole','timeout: 8s'], 'expect-open')
# Origins (the harness starts weft with --ws-origin http://allowed.example).
case('origin-allowed','a handshake from the allowed origin opens a session',[hs(extra='Origin: http://allowed.example\\r\\n')])
raw('origin-refused-403','a handshake from another origin is refused with 403 (RFC 6455 section 10.2)',hs(extra='Origin: http://evil.example\\r\\n'))
# An offer naming server_max_window_bits=15 is accepted by naming it back (RFC 7692 7.1.2.1).
case('deflate-server-window-15-named','an offer with server_max_window_bits=15 gets it named in the response',[hs(extra='Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\\r\\n')])
