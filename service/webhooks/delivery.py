"""One POST of one event to one receiver, safely: the target's addresses are resolved and
checked at every delivery (a name may come to point inside the network after the
subscription was made), the request goes to the address that was checked (so a second lookup
cannot swap it: DNS rebinding), TLS still verifies the certificate against the name, no
redirect is followed, no connection is reused (so each request's certificate is checked
against its own name), the whole exchange is bounded in time and the answer is read only up to
a bound. Any error is a failed attempt, logged and retried like a 5xx."""

import asyncio
import socket
import time
from dataclasses import dataclass

import httpx

from service.webhooks.targets import (
    Address,
    TargetRefused,
    ascii_host,
    check_address,
    literal_address,
    parse_target,
)

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "roadmap-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # no proxy from the environment: the checked address is the peer
        # No connection is reused: the pool knows a connection by its address, not by the
        # name its certificate was checked for, so a reused one would carry another name's
        # requests without checking theirs.
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def _addresses(host: str, port: int) -> list[Address]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for info in infos:
        address = literal_address(str(info[4][0]))
        if address is not None and address not in found:
            found.append(address)
    return found


async def post_event(
    client: httpx.AsyncClient,
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    allow_private: bool,
) -> Outcome:
    started = time.monotonic()

    def outcome(status_code: int | None, error: str | None) -> Outcome:
        return Outcome(status_code, error, round((time.monotonic() - started) * 1000))

    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            parts = parse_target(url, allow_private=allow_private)
            assert parts.hostname is not None  # parse_target requires one
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = await _addresses(parts.hostname, port)
            if not addresses:
                return outcome(None, f"{parts.hostname} resolves to no address")
            for address in addresses:  # every one: any of them could be the one used
                check_address(address, allow_private=allow_private)
            peer = addresses[0]
            netloc = f"[{peer}]" if peer.version == 6 else str(peer)
            pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
            host = ascii_host(parts.hostname)
            async with client.stream(
                "POST",
                pinned,
                content=body.encode(),
                headers={
                    **headers,
                    "Host": host if parts.port is None else f"{host}:{parts.port}",
                    "Content-Type": "application/json",
                },
                extensions={"sni_hostname": host},
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
            status = response.status_code
            if 200 <= status < 300:
                return outcome(status, None)
            redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
            return outcome(status, f"HTTP {status}{redirect}")
    except TargetRefused as refused:
        return outcome(None, str(refused))
    except TimeoutError:
        return outcome(None, f"no answer within {TIMEOUT_SECONDS:g} s")
    except Exception as error:  # whatever it is, the attempt failed: say so, and retry
        return outcome(None, f"{type(error).__name__}: {error}"[:500])
