"""A real SMTP server for the e-mail provider's tests (aiosmtpd, from PyPI; scripts/test.sh
installs it), with answers chosen by the recipient's local part:

  reject...     550 5.1.1 at RCPT: the address does not exist (permanent)
  tempfail...   451 4.7.1 at RCPT on the first try of that address, then accepted
  anything else 250 2.0.0 Ok: queued as <QUEUE ID>

It listens on 127.0.0.1, on a port of the system's choosing, and writes one JSON line per
event to stdout: first {"port": N}, then one {"mail": ...} per accepted message with its
envelope, its headers, its decoded body, its queue id and whether it came over TLS and after AUTH.

Options: --tls CERT KEY offers STARTTLS with that certificate; --auth USER PASSWORD requires
AUTH (after STARTTLS) with exactly that login.
"""

import argparse
import asyncio
import collections
import email
import email.policy
import json
import ssl
import sys
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Handler:
    def __init__(self):
        self.tries = collections.Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        self.tries[address] += 1
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("tempfail") and self.tries[address] == 1:
            return "451 4.7.1 <%s>: Greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        queue_id = uuid.uuid4().hex[:10].upper()
        # Parsed as a mail client would: headers decoded, the body decoded from its charset
        # and transfer encoding.
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        emit(
            {
                "mail": {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "headers": [[name, str(value)] for name, value in message.items()],
                    "body": message.get_content(),
                    "queue_id": queue_id,
                    "tls": bool(session.ssl),
                    "authenticated": bool(session.authenticated),
                }
            }
        )
        return "250 2.0.0 Ok: queued as %s" % queue_id


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    args = parser.parse_args()

    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and args.auth is not None
            and auth_data.login.decode() == args.auth[0]
            and auth_data.password.decode() == args.auth[1]
        )
        return AuthResult(success=ok)

    handler = Handler()

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=context,
            authenticator=authenticator if args.auth else None,
            auth_required=bool(args.auth),
            auth_require_tls=True,
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, host="127.0.0.1", port=0)
        emit({"port": server.sockets[0].getsockname()[1]})
        # Ends with the test: it closes our stdin (or kills us).
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
