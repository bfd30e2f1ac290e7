#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (checked in).

The xenstore seeds are constructed from xenstored's documented wire format
(xen/include/public/io/xs_wire.h: a 16-byte little-endian header
{type, req_id, tx_id, len} followed by `len` payload bytes; reply payloads
as docs/misc/xenstore.txt describes them), not captured from a live
system. Ring and vchan seeds follow the input layout each driver reads
(xen-rt/xen-proto/src/fuzzing.rs, vchan/src/sim.rs `fuzz_header`).
Re-run after changing a driver's input layout: python3 fuzz/make_seeds.py
"""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
T = dict(DIRECTORY=1, READ=2, GET_PERMS=3, WATCH=4, TRANSACTION_START=6,
         TRANSACTION_END=7, GET_DOMAIN_PATH=10, WRITE=11, MKDIR=12, RM=13,
         WATCH_EVENT=15, ERROR=16)

def msg(ty, payload, req_id=1, tx=0, length=None):
    return struct.pack('<IIII', T[ty] if isinstance(ty, str) else ty, req_id, tx,
                       len(payload) if length is None else length) + payload

REPLIES = {
    'read': msg('READ', b'4096'),
    'read_empty': msg('READ', b''),
    'directory': msg('DIRECTORY', b'backend\0device\0control\0name\0'),
    'directory_empty': msg('DIRECTORY', b''),
    'get_perms': msg('GET_PERMS', b'n0\0r1\0w2\0b3\0'),
    'transaction_start': msg('TRANSACTION_START', b'17\0'),
    'transaction_end': msg('TRANSACTION_END', b'OK\0', tx=17),
    'write_ok': msg('WRITE', b'OK\0'),
    'get_domain_path': msg('GET_DOMAIN_PATH', b'/local/domain/1\0'),
    'watch_ok': msg('WATCH', b'OK\0'),
    'watch_event': msg('WATCH_EVENT', b'/local/domain/1/data/vchan/0/0\0tok\0', req_id=0),
    'watch_event_initial': msg('WATCH_EVENT', b'/local/domain/0/backend\0be-watch\0', req_id=0),
    'error_enoent': msg('ERROR', b'ENOENT\0'),
    'error_eacces': msg('ERROR', b'EACCES\0', req_id=2),
    'error_eagain': msg('ERROR', b'EAGAIN\0', tx=17),
    'oversize_len': msg('READ', b'', length=4097),
    'unknown_type': msg(99, b'x\0'),
}

def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

# xenstore_assembler: [chunk size] stream
for name, m in REPLIES.items():
    write('xenstore_assembler', name, bytes([255]) + m)
stream = REPLIES['watch_event'] + msg('READ', b'value', req_id=1) + \
    REPLIES['error_enoent'].replace(struct.pack('<I', 1), struct.pack('<I', 2), 1) + \
    REPLIES['watch_event_initial']
write('xenstore_assembler', 'stream_chunk1', bytes([1]) + stream)
write('xenstore_assembler', 'stream_chunk7', bytes([7]) + stream)
write('xenstore_assembler', 'stream_whole', bytes([255]) + stream)

# xenstore_client: [mix] then records [type sel][id sel][tx][len u16][flags] payload
# type sel: 0 WATCH_EVENT 1 ERROR 2 READ 3 DIRECTORY 4 TRANSACTION_START 5 GET_PERMS 6 WRITE 7 raw
def rec(tsel, idsel, payload, tx=0, flags=0xfe):
    return bytes([tsel, idsel, tx]) + struct.pack('<H', len(payload)) + bytes([flags]) + payload
payloads = {0: b'/local/domain/1/data\0tok\0', 1: b'ENOENT\0', 2: b'value',
            3: b'a\0b\0', 4: b'5\0', 5: b'b0\0r1\0', 6: b'OK\0'}
for mix in (0x00, 0x0f, 0x27, 0x3f):
    write('xenstore_client', f'mix{mix:02x}_all',
          bytes([mix]) + b''.join(rec(t, i, p) for i, (t, p) in enumerate(payloads.items())))
write('xenstore_client', 'watch_events_chunked',
      bytes([0x20]) + rec(0, 250, payloads[0], flags=2) * 4)
write('xenstore_client', 'lying_length', bytes([0x07]) + rec(2, 0, b'abc', flags=0x11))
write('xenstore_client', 'stale_id', bytes([0x07]) + rec(2, 201, b'x'))

# ring_bytes: [shift][cons u32][prod u32][bad size u32] ops: [op][n u16] + data
def rb(shift, cons, prod, ops):
    return bytes([shift]) + struct.pack('<III', cons, prod, 3) + ops
write_op = lambda data: bytes([0]) + struct.pack('<H', len(data)) + data
read_op = lambda n: bytes([1]) + struct.pack('<H', n)
write('ring_bytes', 'xenstore_1024', rb(10, 0, 0, write_op(msg('READ', b'/local')) + read_op(100)))
write('ring_bytes', 'console_2048_wrap', rb(11, 0xfffffff0, 0xfffffff0, write_op(b'x' * 64) + read_op(64)))
write('ring_bytes', 'full', rb(10, 5, 5 + 1024, read_op(2000)))
write('ring_bytes', 'corrupt', rb(10, 0, 1025, read_op(1) + bytes([2]) + struct.pack('<HI', 0, 0xffffffff)))
write('ring_bytes', 'size1', rb(0, 0, 0, write_op(b'ab') + read_op(2)))

# ring_shared: [shift][start u32][bytes u16][req u8][rsp u8] ops: [peer u32][event u32][op]
def rs(shift, start, ops):
    return bytes([shift]) + struct.pack('<IHBB', start, 4096, 112, 112) + \
        b''.join(struct.pack('<IIB', p, e, o) for p, e, o in ops)
write('ring_shared', 'blkif_32', rs(5, 0, [(1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 2, 3)]))
write('ring_shared', 'netif_256_wrap', rs(8, 0xffffff00, [(0xffffff10, 0xffffff01, 1)] * 4 + [(0, 0, 2)] * 3))
write('ring_shared', 'front', rs(5, 0, [(0, 1, 4)] * 3 + [(2, 3, 5), (2, 3, 6), (0, 0, 7)]))
write('ring_shared', 'overflow', rs(5, 0, [(33, 0, 0), (0xffffffff, 0, 1), (64, 0, 5)]))

# vchan_header: vchan::sim::fuzz_header's input (first byte: 1 = client victim)
write('vchan_header', 'server_victim', bytes([0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0]))
write('vchan_header', 'client_victim_10_11', bytes([1, 0, 1]) + bytes([0, 0, 0] * 4) + bytes([1, 0, 0, 0, 1]) + bytes([1, 1]))
write('vchan_header', 'client_victim_12_20', bytes([1, 2, 10]) + bytes([1, 0, 0] * 4) + bytes([1, 0, 0, 0, 1]) + bytes([1, 1]))
write('vchan_header', 'edge_all_ff', bytes([0xff] * 64))
write('vchan_header', 'edge_zero', bytes(64))
write('vchan_header', 'smoke_seed', bytes([1, 10, 10, 0, 0, 0, 0, 1, 1, 1, 1, 1]))

# blkif_request: [vbd sectors u64][flags: 1 read-only, 2 flush][pad] then
# 112-byte blkif_request entries (io/blkif.h, arm64/x86_64 layout).
def blkreq(op, nseg, id_, sector, segs, handle=0):
    b = struct.pack('<BBHIQQ', op, nseg, handle, 0, id_, sector)
    for gref, f, l in segs[:11]:
        b += struct.pack('<IBBH', gref, f, l, 0)
    return b + bytes(112 - len(b))

def vbd(sectors, flags):
    return struct.pack('<QBB', sectors, flags, 0)

FULL = [(8, 0, 7)]
write('blkif_request', 'read_write_flush', vbd(2048, 2) + blkreq(0, 1, 1, 0, FULL) +
      blkreq(1, 2, 2, 8, [(9, 0, 7), (10, 2, 5)]) + blkreq(3, 0, 3, 0, []))
write('blkif_request', 'eleven_segments', vbd(1 << 20, 2) + blkreq(1, 11, 4, 100, [(i, 0, 7) for i in range(11)]))
write('blkif_request', 'read_only', vbd(2048, 1) + blkreq(1, 1, 5, 0, FULL) + blkreq(0, 1, 6, 0, FULL))
write('blkif_request', 'malformed', vbd(2048, 0) + blkreq(0, 0, 7, 0, []) + blkreq(0, 12, 8, 0, FULL * 11) +
      blkreq(0, 1, 9, 0, [(1, 5, 4)]) + blkreq(0, 1, 10, 0, [(1, 0, 8)]) + blkreq(0, 1, 11, 2041, FULL) +
      blkreq(0, 1, 12, 0xfffffffffffffffd, FULL) + blkreq(9, 1, 13, 0, FULL))
write('blkif_request', 'unsupported', vbd(2048, 0) + blkreq(2, 1, 14, 0, FULL) + blkreq(3, 0, 15, 0, []) +
      blkreq(5, 0, 16, 0, []) + blkreq(6, 0, 17, 0, []))

# netif_tx: [first u32][available u16][flags u8] then 12-byte tx ring
# entries from index `first` on (io/netif.h: netif_tx_request
# {gref u32, offset u16, flags u16, id u16, size u16}; netif_extra_info
# {type u8, flags u8, 6 bytes} padded to 12).
TXF_CSUM, TXF_VALID, TXF_MORE, TXF_EXTRA = 1, 2, 4, 8

def txreq(gref, offset, flags, id_, size):
    return struct.pack('<IHHHH', gref, offset, flags, id_, size)

def txextra(ty, more, body):
    return struct.pack('<BB', ty, 1 if more else 0) + body.ljust(6, b'\0') + bytes(4)

gso_x = lambda mss, t, more=False: txextra(1, more, struct.pack('<HBBH', mss, t, 0, 0))
mcast_x = lambda ty, addr, more=False: txextra(ty, more, addr)
hash_x = lambda more=False: txextra(4, more, struct.pack('<BBI', 1, 1, 0x12345678))

def nt(first, slots, available=None, flags=0):
    return struct.pack('<IHB', first, len(slots) if available is None else available, flags) + b''.join(slots)

ping = [txreq(10, 0, TXF_VALID, 1, 98)]
gso_pkt = [txreq(20, 128, TXF_EXTRA | TXF_MORE | TXF_CSUM, 2, 9000), gso_x(1448, 1, True), hash_x(),
           txreq(21, 0, TXF_MORE, 3, 4096), txreq(22, 0, 0, 4, 2000)]
write('netif_tx', 'single', nt(0, ping))
write('netif_tx', 'gso_hash_chain', nt(5, gso_pkt + ping))
write('netif_tx', 'wrap', nt(0xfffffffe, gso_pkt + ping * 3))
write('netif_tx', 'mcast', nt(0, [txreq(1, 0, TXF_EXTRA | TXF_MORE, 7, 0), mcast_x(2, b'\x01\x00\x5e\0\0\x01', True),
                                  mcast_x(3, b'\x01\x00\x5e\0\0\x02')] + ping))
legacy = lambda n, last_more=False: [txreq(0, 0, TXF_MORE, 0, 60 + n)] + \
    [txreq(k, 0, TXF_MORE if (k < n or last_more) else 0, k, 1) for k in range(1, n + 1)]
write('netif_tx', 'slots_18', nt(0, legacy(18) + ping))
write('netif_tx', 'slots_19_drop', nt(0, legacy(19) + ping))
write('netif_tx', 'slots_21_fatal', nt(0, legacy(20, True) + [txreq(9, 0, 0, 9, 1)]))
write('netif_tx', 'drops', nt(0, [txreq(1, 0, TXF_MORE, 1, 100), txreq(2, 0, 0, 2, 120)] +
                              [txreq(1, 0, TXF_MORE, 3, 100), txreq(2, 0, 0, 4, 0)] +
                              [txreq(1, 0, 0, 5, 13)] +
                              [txreq(1, 0, TXF_EXTRA, 6, 60), gso_x(100, 1, True), gso_x(100, 1)] + ping))
write('netif_tx', 'fatal_extra_type', nt(0, [txreq(1, 0, TXF_EXTRA, 1, 60), txextra(6, False, b'')]))
write('netif_tx', 'fatal_cross_page', nt(0, [txreq(1, 4090, TXF_MORE, 1, 100), txreq(2, 0, 0, 2, 80)]))
write('netif_tx', 'fatal_gso', nt(0, [txreq(1, 0, TXF_EXTRA, 1, 60), gso_x(0, 1)]))
write('netif_tx', 'incomplete', nt(0, gso_pkt, available=3))
write('netif_tx', 'fetch_fails', nt(0, gso_pkt, flags=0x80 | 3))
write('netif_tx', 'impossible_count', nt(0, ping, available=257))

# console_ring: [flags: 1 echo][attach block: in_cons in_prod out_cons out_prod]
# then ops, each followed by a poll: 0 snapshot [block 16][out_len u16][out]
# [in_len u16][in]; 1 write [len u8][bytes]; 2 read [n u16]; 3 poke
# [index u8][u32]; 4 scribble [offset u16][len u8][bytes].
def cblock(in_cons, in_prod, out_cons, out_prod):
    return struct.pack('<IIII', in_cons, in_prod, out_cons, out_prod)
def cwrite(b): return bytes([1, len(b)]) + b
def cread(n): return bytes([2]) + struct.pack('<H', n)
def csnap(blk, out, inp): return bytes([0]) + blk + struct.pack('<H', len(out)) + out + struct.pack('<H', len(inp)) + inp
write('console_ring', 'echo_lines', bytes([1]) + cblock(0, 0, 0, 0) +
      cwrite(b'hello\n') + cread(100) + cwrite(b'tab\there\r\n\x1b[0m\n') + cread(100))
write('console_ring', 'wrap', bytes([1]) + cblock(0xfffffff0, 0xfffffff0, 0xffffffe0, 0xffffffe0) +
      b''.join(cwrite(bytes([0x41 + k]) * 60 + b'\n') + cread(80) for k in range(8)))
write('console_ring', 'long_line', bytes([0]) + cblock(0, 0, 7, 7) + cwrite(b'y' * 200) + cwrite(b'\n'))
write('console_ring', 'echo_backlog', bytes([1]) + cblock(0, 0, 0, 0) +
      b''.join(cwrite(b'z' * 50 + b'\n') for _ in range(40)) + cread(500) + cread(2000))
write('console_ring', 'poke_out_prod', bytes([1]) + cblock(0, 0, 0, 0) + cwrite(b'x\n') +
      bytes([3, 3]) + struct.pack('<I', 5000))
write('console_ring', 'poke_in_cons', bytes([1]) + cblock(0, 0, 0, 0) + cwrite(b'x\n') +
      bytes([3, 0]) + struct.pack('<I', 100))
write('console_ring', 'poke_own_index', bytes([0]) + cblock(0, 0, 0, 0) + cwrite(b'x\n') +
      bytes([3, 2]) + struct.pack('<I', 1))
write('console_ring', 'snapshot', bytes([1]) + cblock(0, 0, 0, 0) +
      csnap(cblock(0, 0, 0, 6), b'snap!\n', b'') + csnap(cblock(0, 13, 6, 6), b'', b'echo: snap!\n'))
write('console_ring', 'corrupt_attach', bytes([1]) + cblock(5, 4, 0, 0) + cwrite(b'never\n'))
write('console_ring', 'scribble', bytes([1]) + cblock(0, 0, 0, 0) + cwrite(b'abc\n') +
      bytes([4]) + struct.pack('<HB', 3070, 6) + b'\xff' * 6)
