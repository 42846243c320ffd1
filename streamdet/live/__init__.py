"""Live monitoring (`streamdet watch`): reader threads per stream, one shared detector, windowed alerts, events."""

from streamdet.live.events import EventLog
from streamdet.live.source import SourceSettings
from streamdet.live.targets import StreamTarget, parse_targets
from streamdet.live.run import run_watch, stop_on_signals
from streamdet.live.watch import Watch, WatchSettings
from streamdet.live.webhook import Webhook
from streamdet.live.window import AlertRule, default_min_frames

__all__ = [
    "AlertRule",
    "EventLog",
    "SourceSettings",
    "StreamTarget",
    "Watch",
    "WatchSettings",
    "Webhook",
    "default_min_frames",
    "parse_targets",
    "run_watch",
    "stop_on_signals",
]
