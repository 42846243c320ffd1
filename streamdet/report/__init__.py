"""Scan results for people and machines: the table, JSON / JSONL / CSV (`text`) and the HTML report (`html`)."""

from .text import FORMATS, exit_code, frame_rows, render, summary, table, to_csv, to_json, to_jsonl

__all__ = ["FORMATS", "exit_code", "frame_rows", "render", "summary", "table", "to_csv", "to_json", "to_jsonl"]
