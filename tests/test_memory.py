"""The malloc arena cap of the chat server."""

from __future__ import annotations

import sys

from app import memory


def test_arena_cap_is_set_on_linux_only(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas(2) is sys.platform.startswith("linux")


def test_arena_cap_leaves_a_user_setting_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas(2) is False


def test_arena_cap_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)

    def no_libc(name):
        raise OSError(name)

    monkeypatch.setattr(memory.ctypes, "CDLL", no_libc)
    assert memory.limit_malloc_arenas(2) is False
