"""Addresses the package server can listen on, read from the container engine."""
import ipaddress
import subprocess
from typing import Optional

# One "gateway,subnet" per IPAM config, space separated: a dual-stack bridge has an IPv4 and an
# IPv6 one. Some daemons leave Gateway empty: the bridge then has the subnet's first address.
GATEWAY_FORMAT = "{{range .IPAM.Config}}{{.Gateway}},{{.Subnet}} {{end}}"


def bridge_gateway(docker_bin: str = "docker", timeout: float = 10.0) -> Optional[str]:
    """The engine's default bridge gateway (e.g. 172.17.0.1), IPv4 preferred; None when the
    engine is missing, not answering, has no bridge network, or reports an unspecified address."""
    try:
        result = subprocess.run([docker_bin, "network", "inspect", "bridge", "--format", GATEWAY_FORMAT],
                                capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    addresses = []
    for word in result.stdout.split():
        gateway, _, subnet = word.partition(",")
        try:
            address = (ipaddress.ip_address(gateway.split("/")[0]) if gateway
                       else next(ipaddress.ip_network(subnet, strict=False).hosts()))
        except (ValueError, StopIteration):
            continue
        mapped = getattr(address, "ipv4_mapped", None)
        if not (address.is_unspecified or (mapped is not None and mapped.is_unspecified)):   # 0.0.0.0, ::
            addresses.append(address)
    addresses.sort(key=lambda a: a.version)
    return str(addresses[0]) if addresses else None
