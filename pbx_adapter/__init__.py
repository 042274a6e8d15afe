"""Adapters that turn a PBX's own protocol into callcenter's typed call events."""
