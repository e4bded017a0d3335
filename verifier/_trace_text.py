"""A counterexample as text: numbered saga events and the final outcome (with
the shared resources after each line and each instance's outcome, for many
instances).

Below both renderers (``render`` and ``_sarif``), so neither imports the
other.
"""

from __future__ import annotations

from ._result import Counterexample


def counterexample_text(cex: Counterexample) -> str:
    """A counterexample as numbered saga events, with the final outcome.

    The effect column shows what the participants hold at each point (the world
    the orchestrator cannot see), so a reader sees where an effect is lost or
    doubled.
    """
    lines = []
    for i, step in enumerate(cex.steps):
        if i == 0:
            continue
        marker = ""
        if cex.loop_start is not None and i == cex.loop_start + 1:
            marker = "  <- cycle starts here"
        lines.append(f"  {i:>3}. {step.action}{_resources(step.state)}{marker}")
    last = cex.steps[-1].state
    outcomes = _instance_outcomes(last)
    if outcomes:
        lines.append(f"       => {outcomes}")
    phase = last.get("phase")
    if phase is not None:
        effects = _effects(last)
        lines.append(f"       => saga {phase}" + (f"; effects held: {effects}"
                                                   if effects else ""))
    if cex.loop_start is not None:
        lines.append(f"       (steps {cex.loop_start + 1}..{len(cex.steps) - 1} "
                     "repeat forever)")
    return "\n".join(lines)


def _resources(state: dict[str, object]) -> str:
    """Resource values after a line of a many-instance trace, padded into a
    column so a reader sees which instance changed what."""
    res = state.get("resources")
    if not isinstance(res, dict) or not res:
        return ""
    return "   [" + " ".join(f"{k}={v}" for k, v in res.items()) + "]"


def _instance_outcomes(state: dict[str, object]) -> str:
    insts = state.get("instances")
    if not isinstance(insts, list):
        return ""
    return ", ".join(f"instance {d['instance']} {d['phase']}" for d in insts
                     if isinstance(d, dict))


def _effects(state: dict[str, object]) -> str:
    steps = state.get("steps")
    if not isinstance(steps, dict):
        return ""
    held = [name if info["effect"] == 1 else f"{name} (x{info['effect']})"
            for name, info in steps.items()
            if isinstance(info, dict) and info.get("effect")]
    return ", ".join(held) or "none"
