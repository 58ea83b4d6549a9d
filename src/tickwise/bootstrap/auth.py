"""`tickwise auth` use cases: the daily Kite login, the same login against the simulator.

Token state (``token_status``, ``token_store``) lives in :mod:`tickwise.bootstrap.credentials`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from tickwise.adapters.kite.auth import LoginCallbackServer, StoredToken, login_flow
from tickwise.adapters.kite.rest import KiteRestClient
from tickwise.bootstrap.credentials import token_store
from tickwise.bootstrap.simulator import start_simulator
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError


async def login_interactive(
    settings: Settings,
    *,
    open_browser: bool = True,
    timeout_s: float = 300.0,
    echo: Callable[[str], None] = print,
) -> StoredToken:
    """The daily Kite login: print/open the login URL, capture the redirect, store the token (0600)."""
    broker = settings.broker
    if not broker.has_credentials:
        raise ConfigError(
            "Kite login needs KITE_API_KEY and KITE_API_SECRET (or use `tickwise auth login --simulator`)"
        )
    async with (
        LoginCallbackServer(broker.redirect_port) as callback,
        KiteRestClient(broker.api_key, root=broker.rest_root) as rest,
    ):

        def show(url: str) -> None:
            echo(f"Open this URL in a browser and log in to Kite:\n  {url}")
            echo(
                f"Waiting for the redirect on {callback.redirect_url} (the app's registered redirect URL)..."
            )
            if open_browser:
                import webbrowser

                with contextlib.suppress(Exception):
                    webbrowser.open(url)

        session = await login_flow(
            rest,
            broker.api_secret.get_secret_value(),
            login_base_url=broker.login_url,
            callback=callback,
            open_login=show,
            timeout_s=timeout_s,
        )
    token = StoredToken.from_session(session)
    token_store(settings).save(token)
    return token


async def login_with_simulator(settings: Settings) -> StoredToken:
    """Start the simulator, log in to it end to end (as a browser would), store the token beside the real one."""
    async with start_simulator(settings, process=False) as logged_in:
        await logged_in.rest.profile()  # proves the new token works before it is stored
    token = StoredToken.from_session(logged_in.session, simulated=True)
    token_store(settings, simulated=True).save(token)
    return token
