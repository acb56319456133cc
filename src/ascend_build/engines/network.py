"""Addresses the package server can listen on, read from the container engine."""
import ipaddress
import subprocess
from typing import Optional

# One gateway per IPAM config, space separated: a dual-stack bridge has an IPv4 and an IPv6 one.
GATEWAY_FORMAT = "{{range .IPAM.Config}}{{.Gateway}} {{end}}"


def bridge_gateway(docker_bin: str = "docker", timeout: float = 10.0) -> Optional[str]:
    """The engine's default bridge gateway (e.g. 172.17.0.1), IPv4 preferred; None when the
    engine is missing, not answering, or has no bridge network."""
    try:
        result = subprocess.run([docker_bin, "network", "inspect", "bridge", "--format", GATEWAY_FORMAT],
                                capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    addresses = []
    for word in result.stdout.split():
        try:
            addresses.append(ipaddress.ip_address(word.split("/")[0]))
        except ValueError:
            continue
    addresses.sort(key=lambda a: a.version)
    return str(addresses[0]) if addresses else None
