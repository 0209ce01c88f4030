"""A test plugin: a permission resolver in Python that misbehaves as its manifest's [config]
behaviour says: "raise", "loop", "memory", or "deny" (naming its label)."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import permission_resolver
from wit_world.imports import host, types

class PermissionResolver(exports.PermissionResolver):
    def resolve(self, request: permission_resolver.Request) -> permission_resolver.Verdict:
        # Read at the call: the module runs when the component is built, without the host.
        settings = json.loads(host.config() or "{}")
        behaviour = settings.get("behaviour", "abstain")
        if behaviour == "raise":
            raise ValueError("misbehave-py was told to raise")
        if behaviour == "error":
            raise Err(types.PluginError_Failed("misbehave-py was told to fail"))
        if behaviour == "loop":
            while True:
                pass
        if behaviour == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if behaviour == "deny":
            return permission_resolver.Verdict_Deny(f"denied by {settings.get('label', 'misbehave-py')}")
        return permission_resolver.Verdict_Abstain()
