"""A real SMTP server for the tests of central/alert.

It runs aiosmtpd (Debian package python3-aiosmtpd) on a free port of
127.0.0.1, which it writes to the file --port-file, and
saves every message exactly as received, NNNN.eml, with its envelope and
session in NNNN.json ({"mail_from", "rcpt_tos", "tls", "login",
"mechanism"}), both written before the server answers the DATA command.
While a file named "reject" exists in the spool, DATA is answered with a
temporary failure (451). With --cert and --key the server offers STARTTLS
and requires it, or with --smtps as well, speaks TLS from the start
(implicit TLS, as on port 465); with --user and --password it requires AUTH (over TLS when
it offers TLS). It prints "smtpd ready" on standard error once it listens.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Spool:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.directory, "reject")):
            return "451 4.3.0 Try again later"
        self.count += 1
        base = os.path.join(self.directory, "%04d" % self.count)
        save(base + ".eml", envelope.original_content)
        login = getattr(session, "login_data", None)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login.decode() if login else None,
            "mechanism": getattr(session, "relais_mechanism", None),
        }
        save(base + ".json", json.dumps(meta).encode())
        return "250 2.0.0 OK"


def save(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()

    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)

    def authenticate(server, session, envelope, mechanism, data):
        ok = (
            isinstance(data, LoginPassword)
            and data.login == a.user.encode()
            and data.password == a.password.encode()
        )
        if ok:
            session.relais_mechanism = mechanism
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    starttls = tls is not None and not a.smtps
    kw = {"hostname": "smtpd.test"}
    if starttls:
        kw.update(tls_context=tls, require_starttls=True)
    if a.user:
        kw.update(authenticator=authenticate, auth_required=True, auth_require_tls=starttls)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    spool = Spool(a.spool)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(spool, loop=loop, **kw),
            "127.0.0.1",
            0,
            ssl=tls if a.smtps else None,
        )
    )
    save(a.port_file, str(server.sockets[0].getsockname()[1]).encode())
    print("smtpd ready", file=sys.stderr, flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
