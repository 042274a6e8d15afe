"""Supervisors' live queues: the live board, agent pauses, per-queue targets and alarms."""
