"""`carrier-sla serve` (the CLEC portal) and `carrier-sla user add` (its users file): parse, call, print.

The web framework is imported only when `serve` runs, so the other commands work without the
portal's dependencies (pip install 'carrier_sla[portal]').
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from carrier_sla.errors import UsageError

SECRET_ENV = "CARRIER_SLA_SECRET_KEY"


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="start the CLEC portal: a read-only web application over the store",
        description="Serve the store's current view and every published run to the users of a users file: each "
        "CLEC sees its own data and the all-CLEC aggregate, staff and ILEC users every carrier. Sessions are "
        f"signed with ${SECRET_ENV} when set, else with a key made at start (sessions end at a restart).",
    )
    serve.add_argument("--store", required=True, type=Path, help="the output store")
    serve.add_argument("--users", type=Path, help="the users file (default STORE/portal/users.toml)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8400, help="port to listen on (default 8400)")
    serve.add_argument("--ssl-certfile", type=Path, help="serve https with this certificate (PEM)")
    serve.add_argument("--ssl-keyfile", type=Path, help="the certificate's private key (PEM)")
    serve.add_argument(
        "--secure-cookies",
        action="store_true",
        help="mark cookies Secure and send HSTS: behind a proxy that terminates https (implied by --ssl-certfile)",
    )
    serve.set_defaults(command_module="carrier_sla.cli.portal")

    user = sub.add_parser(
        "user",
        help="manage the portal's users file",
        description="Add or replace a user of the portal; the password is stored as an Argon2id hash only.",
    )
    actions = user.add_subparsers(dest="user_action", required=True)
    add = actions.add_parser(
        "add",
        help="add or replace a user",
        description="Add or replace a user of the portal; the password is stored as an Argon2id hash only.",
        epilog='example: echo "$PASSWORD" | carrier-sla user add ana --users portal-users.toml --carrier CLEC03 '
        "--password-stdin",
    )
    add.add_argument("name", help="the user name (letters, digits, _ . @ -)")
    add.add_argument("--users", required=True, type=Path, help="the users file (TOML; created when missing)")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--carrier", help="a CLEC user: the carrier id whose data the user sees, e.g. CLEC07")
    who.add_argument("--role", choices=["staff", "ilec"], help="a user who sees every carrier")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.set_defaults(command_module="carrier_sla.cli.portal")


def command(args: argparse.Namespace) -> int:
    return _serve(args) if args.command == "serve" else _user_add(args)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the passwords differ")
    return first


def _user_add(args: argparse.Namespace) -> int:
    from carrier_sla.portal.users import add_user

    user = add_user(args.users, args.name, _read_password(args.password_stdin), carrier=args.carrier, role=args.role)
    who = f"CLEC user of {user.carrier}" if user.carrier else f"{user.role} user (every carrier)"
    print(f"{args.users}: {user.name}, {who}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from carrier_sla.portal.app import create_app
    except ModuleNotFoundError as exc:
        raise UsageError(f"the portal needs {exc.name}: pip install 'carrier_sla[portal]'") from exc
    from carrier_sla.portal.users import load_users
    from carrier_sla.store.view import open_store

    open_store(args.store)  # a clear error now rather than at the first page
    users_file = args.users or args.store / "portal" / "users.toml"
    if not users_file.exists():
        raise UsageError(f"{users_file}: no users file (make one with `carrier-sla user add NAME --users FILE`)")
    users = load_users(users_file)
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise UsageError("give both --ssl-certfile and --ssl-keyfile, or neither")
    https = args.ssl_certfile is not None or args.secure_cookies
    app = create_app(args.store, users, secret_key=os.environ.get(SECRET_ENV) or None, https=https)
    scheme = "https" if args.ssl_certfile else "http"
    print(f"carrier-sla portal on {scheme}://{args.host}:{args.port}/ ({len(users)} users, store {args.store})")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.ssl_certfile) if args.ssl_certfile else None,
        ssl_keyfile=str(args.ssl_keyfile) if args.ssl_keyfile else None,
        server_header=False,
        log_level="info",
    )
    return 0
