"""access-policy in Python: per integration (by name), the client addresses (CIDR blocks) and
UTC hours from which it may call, from the manifest's [config.integrations."<name>"] tables. A
request from elsewhere, or outside the hours, is denied; everything else is left to the ACL (the
resolver abstains, it never widens access). The same configuration and verdicts as the Rust
sample plugins/access-policy."""

import ipaddress
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import permission_resolver
from wit_world.imports import host, types


def _log(level, message, **fields):
    host.log(level, message, [(k, str(v)) for k, v in fields.items()])


def _rules():
    """The rules by integration name, from the plugin's configuration."""
    config = json.loads(host.config() or "{}")
    rules = {}
    for name, rule in (config.get("integrations") or {}).items():
        blocks = None
        if rule.get("addresses") is not None:
            try:
                blocks = [ipaddress.ip_network(a.strip(), strict=False) for a in rule["addresses"]]
            except ValueError as e:
                raise Err(types.PluginError_BadConfig(f"integrations.{name}.addresses: {e}"))
        hours = rule.get("hours_utc")
        if hours is not None:
            start, end = hours
            if not (0 <= start < 24 and 0 <= end <= 24):
                raise Err(types.PluginError_BadConfig(f"integrations.{name}.hours_utc: hours are 0-24"))
        rules[name] = (blocks, hours)
    return rules


class PermissionResolver(exports.PermissionResolver):
    def __init__(self):
        self.rules = None

    def resolve(self, request: permission_resolver.Request) -> permission_resolver.Verdict:
        if self.rules is None:
            self.rules = _rules()
        principal = request.principal
        if not isinstance(principal, types.Principal_Integration):
            return permission_resolver.Verdict_Abstain()
        name = principal.value.name
        rule = self.rules.get(name)
        if rule is None:
            return permission_resolver.Verdict_Abstain()
        blocks, hours = rule
        if blocks is not None:
            address = request.client_address or "unknown"
            try:
                ip = ipaddress.ip_address(address)
                allowed = any(ip in b for b in blocks)
            except ValueError:
                allowed = False
            if not allowed:
                _log(host.Level.WARN, "denied: client address not allowed",
                     integration=name, client_address=address, path=request.path)
                return permission_resolver.Verdict_Deny(
                    f"client address {address} is not allowed for integration {name}")
        if hours is not None:
            start, end = hours
            hour = (request.now % 86400) // 3600
            inside = start <= hour < end if start <= end else (hour >= start or hour < end)
            if not inside:
                _log(host.Level.WARN, "denied: outside the allowed hours", integration=name, hour_utc=hour)
                return permission_resolver.Verdict_Deny(
                    f"integration {name} may call between {start}:00 and {end}:00 UTC")
        return permission_resolver.Verdict_Abstain()
