"""Browse _ipp._tcp and its _print and _universal subtypes with python-zeroconf.

Usage: browse.py IP [--register NAME PORT]

Listens on the interface that has IP, over IPv4. Prints one JSON object per
line: each browser event (added, removed, updated), the resolved info of each
instance seen under _ipp._tcp, and, the first time an instance is seen, the
answers to direct queries for the three PTR names, its SRV and TXT records and
its host's A record. Each direct query is a QU question sent from a port other
than 5353, so that only an answer to it, never an announcement, can count.
With --register, it first registers NAME under _ipp._tcp itself (probing for
the name as RFC 6762 requires) and makes no direct queries. It exits when its
standard input closes, or after a minute.
"""

import json
import queue
import socket
import sys
import threading
import time

from zeroconf import (
    DNSIncoming,
    DNSOutgoing,
    DNSQuestion,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    Zeroconf,
)
from zeroconf.const import _CLASS_IN, _FLAGS_QR_QUERY, _TYPE_A, _TYPE_PTR, _TYPE_SRV, _TYPE_TXT

BASE = "_ipp._tcp.local."
TYPES = [BASE, "_print._sub." + BASE, "_universal._sub." + BASE]
TYPE_NAMES = {_TYPE_A: "A", _TYPE_PTR: "PTR", _TYPE_SRV: "SRV", _TYPE_TXT: "TXT"}


def emit(**fields):
    print(json.dumps(fields), flush=True)


def txt_strings(raw):
    out, i = [], 0
    while i < len(raw):
        n = raw[i]
        out.append(raw[i + 1 : i + 1 + n].decode("utf-8", "replace"))
        i += 1 + n
    return out


def describe(rec):
    d = {"name": rec.name, "type": TYPE_NAMES.get(rec.type, str(rec.type)), "ttl": rec.ttl}
    if rec.type == _TYPE_PTR:
        d["target"] = rec.alias
    elif rec.type == _TYPE_SRV:
        d["target"], d["port"] = rec.server, rec.port
    elif rec.type == _TYPE_TXT:
        d["txt"] = txt_strings(rec.text)
    elif rec.type == _TYPE_A:
        d["address"] = socket.inet_ntoa(rec.address)
    return d


def query(ip, name, qtype):
    """Return the records of the first answer to a direct query for name, or []."""
    out = DNSOutgoing(_FLAGS_QR_QUERY)
    question = DNSQuestion(name, qtype, _CLASS_IN)
    question.unicast = True
    out.add_question(question)
    packet = out.packets()[0]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ip, 0))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        for _ in range(6):  # a query every half second, 3 s in all
            s.sendto(packet, ("224.0.0.251", 5353))
            end = time.monotonic() + 0.5
            while (left := end - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data, _ = s.recvfrom(9000)
                except socket.timeout:
                    break
                answers = DNSIncoming(data).answers
                records = [describe(r) for r in (answers() if callable(answers) else answers)]
                if any(r["name"].lower() == name.lower() and r["type"] == TYPE_NAMES[qtype] for r in records):
                    return records
    finally:
        s.close()
    return []


def main():
    ip = sys.argv[1]
    register = len(sys.argv) == 5 and sys.argv[2] == "--register"
    zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
    if register:
        info = ServiceInfo(
            BASE,
            sys.argv[3] + "." + BASE,
            port=int(sys.argv[4]),
            properties={"txtvers": "1", "rp": "ipp/print"},
            server="python-peer.local.",
            addresses=[socket.inet_aton(ip)],
        )
        zc.register_service(info)
        emit(event="registered", name=info.name)

    events = queue.Queue()

    def on_change(zeroconf, service_type, name, state_change):
        events.put((service_type, name, state_change.name.lower()))

    browser = ServiceBrowser(zc, TYPES, handlers=[on_change])
    threading.Thread(target=lambda: (sys.stdin.read(), events.put(None)), daemon=True).start()
    queried = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if event is None:
            break
        service_type, name, state = event
        emit(event=state, type=service_type, name=name)
        if state in ("added", "updated") and service_type == BASE:
            info = zc.get_service_info(BASE, name, timeout=3000)
            if info:
                emit(event="info", name=name, txt=txt_strings(info.text), port=info.port,
                     addresses=info.parsed_addresses(), server=info.server)
        if state == "added" and not register and name not in queried:
            queried.add(name)
            for ptr in TYPES:
                emit(event="query", qname=ptr, qtype="PTR", records=query(ip, ptr, _TYPE_PTR))
            srv = query(ip, name, _TYPE_SRV)
            emit(event="query", qname=name, qtype="SRV", records=srv)
            emit(event="query", qname=name, qtype="TXT", records=query(ip, name, _TYPE_TXT))
            for host in {r["target"] for r in srv if r["type"] == "SRV"}:
                emit(event="query", qname=host, qtype="A", records=query(ip, host, _TYPE_A))
    browser.cancel()
    zc.close()


if __name__ == "__main__":
    main()
