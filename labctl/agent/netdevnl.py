"""Queue -> NAPI -> IRQ of one interface from the kernel's netdev generic-netlink family.

Run on a host as `python3 netdevnl.py IFNAME` (labctl sends it inline in the facts script);
standard library only, read-only: it sends two dump requests (queue-get, napi-get) and prints
one line per queue, `rx 0 37` (type, queue id, IRQ; `-` where the driver reports a NAPI without
an IRQ or no NAPI at all). Where the kernel has no netdev family, no queue-get or no napi-get
(before 6.8), it prints `unsupported: <why>` and exits 0: that is a fact, not a failure.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NETDEV_CMD_QUEUE_GET = 10
NETDEV_CMD_NAPI_GET = 11
QUEUE_ID, QUEUE_IFINDEX, QUEUE_TYPE, QUEUE_NAPI_ID = 1, 2, 3, 4
NAPI_IFINDEX, NAPI_ID, NAPI_IRQ = 1, 2, 3
QUEUE_TYPES = {0: "rx", 1: "tx"}


class Unsupported(Exception):
    """The kernel cannot answer (no family, no command): said, not raised to the caller."""


def attribute(kind: int, payload: bytes) -> bytes:
    header = struct.pack("=HH", 4 + len(payload), kind)
    return header + payload + b"\0" * (-len(payload) % 4)


def parse_attributes(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def u32(value: bytes) -> int:
    return int(struct.unpack_from("=I", value)[0])


class Genl:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.settimeout(5)
        self.sock.bind((0, 0))
        self.seq = 0

    def request(self, family: int, command: int, attrs: bytes, flags: int) -> list[dict[int, bytes]]:
        """Send one request; the attributes of every answer until DONE (dump) or the ACK."""
        self.seq += 1
        body = struct.pack("=BBH", command, 1, 0) + attrs
        header = struct.pack("=IHHII", 16 + len(body), family, NLM_F_REQUEST | flags, self.seq, 0)
        self.sock.send(header + body)
        answers: list[dict[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if length < 16:
                    return answers
                payload = data[offset + 16:offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if kind == NLMSG_DONE:
                    return answers
                if kind == NLMSG_ERROR:
                    error = -struct.unpack_from("=i", payload)[0]
                    if error:
                        raise Unsupported(f"command {command}: {os.strerror(error)}")
                    return answers
                answers.append(parse_attributes(payload[4:]))


def family_id(genl: Genl) -> int:
    answers = genl.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                           attribute(CTRL_ATTR_FAMILY_NAME, b"netdev\0"), NLM_F_ACK)
    for attrs in answers:
        if CTRL_ATTR_FAMILY_ID in attrs:
            return int(struct.unpack_from("=H", attrs[CTRL_ATTR_FAMILY_ID])[0])
    raise Unsupported("no netdev netlink family")


def queue_irqs(ifname: str) -> list[tuple[str, int, int | None]]:
    ifindex = socket.if_nametoindex(ifname)
    genl = Genl()
    family = family_id(genl)
    index = struct.pack("=I", ifindex)
    queues = genl.request(family, NETDEV_CMD_QUEUE_GET, attribute(QUEUE_IFINDEX, index), NLM_F_DUMP)
    napis = genl.request(family, NETDEV_CMD_NAPI_GET, attribute(NAPI_IFINDEX, index), NLM_F_DUMP)
    irq_of = {u32(n[NAPI_ID]): u32(n[NAPI_IRQ]) for n in napis if NAPI_ID in n and NAPI_IRQ in n}
    result = []
    for q in queues:
        if QUEUE_ID not in q or QUEUE_TYPE not in q or u32(q.get(QUEUE_IFINDEX, index)) != ifindex:
            continue
        napi = u32(q[QUEUE_NAPI_ID]) if QUEUE_NAPI_ID in q else None
        kind = QUEUE_TYPES.get(u32(q[QUEUE_TYPE]), str(u32(q[QUEUE_TYPE])))
        result.append((kind, u32(q[QUEUE_ID]), irq_of.get(napi) if napi is not None else None))
    return sorted(result)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: netdevnl.py IFNAME", file=sys.stderr)
        return 2
    try:
        rows = queue_irqs(argv[1])
    except (Unsupported, OSError) as err:
        print(f"unsupported: {err}")
        return 0
    for kind, queue, irq in rows:
        print(f"{kind} {queue} {irq if irq is not None else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
