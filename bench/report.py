"""Write the benchmark's results: JSON for machines, a Markdown table for people, a PNG chart for a glance."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# (key, target, "min" when higher is better / "max" when lower is better, unit, original system's figure)
TARGETS = [
    ("api_send_rps", 350, "min", "req/s", 58),
    ("api_send_p50_ms", None, None, "ms", 135),
    ("api_send_p99_ms", 100, "max", "ms", 195),
    ("api_send_rps_with_pipeline", None, None, "req/s", None),
    ("api_send_rps_bearer", None, None, "req/s", None),
    ("api_hello_rps", None, None, "req/s", None),
    ("api_list_p99_ms_1m", 50, "max", "ms", None),
    ("api_list_p99_ms_1m_8_clients", None, None, "ms", None),
    ("api_send_1000_ms", 500, "max", "ms", None),
    ("api_batch_msgs_per_s", 2000, "min", "msg/s", None),
    ("api_send_attachment_1mb_ms", 100, "max", "ms", None),
    ("pipeline_rcpt_per_s_0ms", 5000, "min", "rcpt/s", 2600),
    ("pipeline_rcpt_per_s_50ms", 2000, "min", "rcpt/s", 180),
    ("pipeline_rcpt_per_s_50ms_2_senders", None, None, "rcpt/s", None),
    ("pipeline_scale_2_over_1", 1.7, "min", "x", None),
    # To the lean SendGrid sink; _full_fake: to the fake, whose own CPU shares the machine's two cores.
    ("pipeline_msgs_per_s_1rcpt_0ms", 1500, "min", "msg/s", None),
    ("pipeline_msgs_per_s_1rcpt_0ms_full_fake", None, None, "msg/s", None),
    # Bound by SendGrid (200 ms a call, 8 calls per sender), not the CPU: two senders, twice the work.
    ("pipeline_rcpt_per_s_200ms_c8", None, None, "rcpt/s", None),
    ("pipeline_rcpt_per_s_200ms_c8_2_senders", None, None, "rcpt/s", None),
    ("pipeline_scale_io_2_over_1", 1.8, "min", "x", None),
    # Other users' one-recipient sends while one user's 200,000-recipient backlog drains.
    ("fair_small_send_p99_s", 2, "max", "s", None),
    ("fair_small_send_p50_s", None, None, "s", None),
    # The same with the backlog in the normal lane: what one FIFO work queue would give.
    ("fair_small_send_p99_s_one_lane", None, None, "s", None),
    ("webhook_events_per_s", 1000, "min", "events/s", None),
    ("e2e_p50_ms", 100, "max", "ms", None),
    ("e2e_p99_ms", 500, "max", "ms", None),
    ("scheduled_lateness_p99_s", 5, "max", "s", None),
    ("scheduled_lateness_p50_s", None, None, "s", None),
    # api_send's load while `prune` deletes 1,000,000 old rows: api_send_p99_ms's bound.
    ("prune_send_p99_ms", 100, "max", "ms", None),
    ("prune_send_p99_ms_before", None, None, "ms", None),
    ("prune_send_rps", None, None, "req/s", None),
    ("prune_rows_per_s", None, None, "rows/s", None),
    ("raw_amqp_msgs_per_s", None, None, "msg/s", None),
    ("raw_fake_http_rps", None, None, "req/s", None),
    ("web_rss_mb", 150, "max", "MB", 55),
    ("sender_rss_mb", 80, "max", "MB", 30),
    ("sender_rss_mb_attachments", 80, "max", "MB", None),
    # The sender's peak while fair's 200,000-recipient backlog drains through the bulk lane.
    ("sender_rss_mb_bulk", 80, "max", "MB", None),
    ("results_rss_mb", None, None, "MB", None),
]


def machine() -> dict[str, str | int]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "python": platform.python_version(), "os": platform.platform()}


def verdict(key: str, value: float, medians: dict[str, float]) -> str:
    for name, target, kind, _, _ in TARGETS:
        if name != key:
            continue
        if key == "api_send_rps" and target is not None and "api_hello_rps" in medians:
            third = medians["api_hello_rps"] / 3
            ok = value >= target and value >= third
            return f"{'met' if ok else 'MISSED'} (>= {target} and >= hello/3 = {third:.0f})"
        if target is None:
            return ""
        ok = value >= target if kind == "min" else value <= target
        return f"{'met' if ok else 'MISSED'} ({'>=' if kind == 'min' else '<='} {target})"
    return ""


def carry_over(
    medians: dict[str, float], samples: dict[str, list[float]], notes: list[str], measured_at: dict[str, str]
) -> None:
    """For a partial run (--only): keep the other keys of the last run, and say where they come from."""
    try:
        previous = json.loads((RESULTS / "latest.json").read_text())
    except (OSError, ValueError):
        return
    for key in [k for k in samples if k.endswith("_rss_mb") and k in previous]:
        # A peak measured under part of the load must not hide the full run's higher peak.
        if previous[key] > medians[key]:
            medians[key], samples[key] = previous[key], previous["runs"][key]
    carried = [key for key in previous.get("runs", {}) if key not in samples]
    by_time: dict[str, list[str]] = {}
    for key in carried:
        medians[key] = previous[key]
        samples[key] = previous["runs"][key]
        when = previous.get("measured_at", {}).get(key, previous.get("generated_at", "?"))
        measured_at[key] = when
        by_time.setdefault(when, []).append(key)
    for when, keys in sorted(by_time.items()):
        notes.append(f"measured at {when} (carried over): {', '.join(keys)}")


def write_report(
    *, medians: dict[str, float], samples: dict[str, list[float]], notes: list[str], quick: bool, partial: bool = False
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    measured_at = dict.fromkeys(samples, now)
    if partial:
        carry_over(medians, samples, notes, measured_at)
    info = machine()
    document = {
        "generated_at": now,
        "measured_at": measured_at,
        "machine": info,
        "quick": quick,
        **medians,
        "runs": samples,
        "notes": notes,
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    units = {key: unit for key, _, _, unit, _ in TARGETS}
    originals = {key: original for key, _, _, _, original in TARGETS}
    lines = [
        f"Measured {document['generated_at']} on {info['cpu']} ({info['cores']} cores), Python {info['python']}"
        + (" — QUICK run, not comparable" if quick else "")
        + ".",
        "",
        "| key | median | runs | original | target |",
        "|---|---|---|---|---|",
    ]
    for key, _, _, _, _ in TARGETS:
        if key in medians:
            runs = ", ".join(f"{v:g}" for v in samples[key])
            original = "" if originals[key] is None else f"{originals[key]:g}"
            target = verdict(key, medians[key], medians)
            lines.append(f"| `{key}` | {medians[key]:g} {units[key]} | {runs} | {original} | {target} |")
    lines += ["", *(f"- {note}" for note in notes)]
    table = "\n".join(lines) + "\n"
    (RESULTS / "latest.md").write_text(table)
    print("\n" + table, flush=True)
    chart(medians, units)


def chart(medians: dict[str, float], units: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = {key: target for key, target, _, _, _ in TARGETS}
    groups = [
        ("Throughput", [k for k in medians if units.get(k) in {"req/s", "rcpt/s", "msg/s"}]),
        ("Latency", [k for k in medians if units.get(k) == "ms"]),
        ("Memory (peak RSS per process)", [k for k in medians if units.get(k) == "MB"]),
    ]
    groups = [(title, keys) for title, keys in groups if keys]
    figure, axes = plt.subplots(len(groups), 1, figsize=(10, 3.6 * len(groups)))
    for axis, (title, keys) in zip(axes if len(groups) > 1 else [axes], groups, strict=True):
        values = [medians[k] for k in keys]
        bars = axis.barh(keys, values, color="#4c78a8")
        for bar, key in zip(bars, keys, strict=True):
            axis.text(
                bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {medians[key]:g}", va="center", fontsize=8
            )
            if targets.get(key) is not None:
                y = bar.get_y()
                axis.plot([targets[key]] * 2, [y, y + bar.get_height()], color="#e45756", linewidth=2)
        axis.set_title(f"{title} (red: target)")
        axis.invert_yaxis()
        axis.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "latest.png", dpi=110)
    plt.close(figure)
