"""Who a client is, for a per-address limit: the address a limit counts, whatever its spelling."""

from __future__ import annotations

import ipaddress


def visitor_network(address: str) -> str:
    """What a per-address limit counts: an IPv4 address, or an IPv6 address's /64 (one subscriber's network, in
    which a host takes any of 2^64 addresses at will: privacy addresses change on their own); an IPv4-mapped IPv6
    address is its IPv4 address. Anything that is not an address is counted as given."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
