"""Keys as DevTools' ``Input.dispatchKeyEvent`` needs them: the DOM ``key``, its ``code``, the
Windows virtual key code Chromium derives ``keyCode`` from, and the text a key press types."""

from __future__ import annotations

from typing import NamedTuple


class Key(NamedTuple):
    key: str
    code: str
    key_code: int
    text: str = ""  # what the key types; none for keys that only move or edit


KEYS: dict[str, Key] = {k.key: k for k in (
    Key("Enter", "Enter", 13, "\r"),
    Key("Tab", "Tab", 9),
    Key("Escape", "Escape", 27),
    Key("Backspace", "Backspace", 8),
    Key("Delete", "Delete", 46),
    Key("ArrowLeft", "ArrowLeft", 37),
    Key("ArrowUp", "ArrowUp", 38),
    Key("ArrowRight", "ArrowRight", 39),
    Key("ArrowDown", "ArrowDown", 40),
    Key("Home", "Home", 36),
    Key("End", "End", 35),
    Key("PageUp", "PageUp", 33),
    Key("PageDown", "PageDown", 34),
)}
KEYS["Space"] = Key(" ", "Space", 32, " ")  # the DOM names the space bar's key " "; "Space" is its code

# Printable ASCII other than letters and digits, on a US keyboard: (code, Windows key code).
_PUNCTUATION = {
    " ": ("Space", 32), "-": ("Minus", 189), "_": ("Minus", 189), "=": ("Equal", 187), "+": ("Equal", 187),
    "[": ("BracketLeft", 219), "{": ("BracketLeft", 219), "]": ("BracketRight", 221), "}": ("BracketRight", 221),
    "\\": ("Backslash", 220), "|": ("Backslash", 220), ";": ("Semicolon", 186), ":": ("Semicolon", 186),
    "'": ("Quote", 222), '"': ("Quote", 222), ",": ("Comma", 188), "<": ("Comma", 188), ".": ("Period", 190),
    ">": ("Period", 190), "/": ("Slash", 191), "?": ("Slash", 191), "`": ("Backquote", 192), "~": ("Backquote", 192),
    "!": ("Digit1", 49), "@": ("Digit2", 50), "#": ("Digit3", 51), "$": ("Digit4", 52), "%": ("Digit5", 53),
    "^": ("Digit6", 54), "&": ("Digit7", 55), "*": ("Digit8", 56), "(": ("Digit9", 57), ")": ("Digit0", 48),
}


def key_of(name: str) -> Key | None:
    """The key named ``name`` (a DOM key name, or one printable ASCII character), else None:
    other characters are typed with ``Input.insertText``, which fires ``input`` but no key events."""
    if name in KEYS:
        return KEYS[name]
    if len(name) != 1:
        return None
    if name.isascii() and name.isalpha():
        return Key(name, f"Key{name.upper()}", ord(name.upper()), name)
    if name.isascii() and name.isdigit():
        return Key(name, f"Digit{name}", ord(name), name)
    if name in _PUNCTUATION:
        code, key_code = _PUNCTUATION[name]
        return Key(name, code, key_code, name)
    return None
