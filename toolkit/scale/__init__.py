"""Scale-out on Ray (the ``ray`` extra): phones as cluster resources, candidate work as Ray tasks.

Importing this package does not import Ray; connecting (or using a pool, agent or executor) does.
"""
from toolkit.scale.agent import Agent
from toolkit.scale.cluster import NAMESPACE, ScaleError, connect, disconnect, require_ray
from toolkit.scale.phones import RayPhonePool, RemotePhone, phone_resources, wait_for_phones

__all__ = ["Agent", "NAMESPACE", "RayPhonePool", "RemotePhone", "ScaleError", "connect",
           "disconnect", "phone_resources", "require_ray", "wait_for_phones"]
