#!/usr/bin/env python3
"""Prints the background loops' periods of config/default.toml (the [jobs]
and [webhooks] *_ms keys) as FLOODGATE__SECTION__KEY=value lines, one per
line, for `env`: the load tests run floodgate with FLOODGATE_ENV=test (its
keys, rate limits off) but with the periods a deployment runs; the test
configuration ticks two to five times as often so that the suite is fast."""
import pathlib
import tomllib

conf = tomllib.loads((pathlib.Path(__file__).resolve().parent.parent / "config" / "default.toml").read_text())
for section in ("jobs", "webhooks"):
    for key, value in conf.get(section, {}).items():
        if key.endswith("_ms"):
            print(f"FLOODGATE__{section.upper()}__{key.upper()}={value}")
