"""Self-contained HTML reports: every image embedded (base64), styles inline, no network needed to view them.

``write_workshop_report(workshop, out_dir)`` writes the workshop's report: ``index.html``, one PNG per figure and
``descent.gif``. ``write_fit_report(result, out_dir, ...)`` writes the report of one fit (``gdlab fit --report``).

A report folder is built under a temporary name beside its destination and renamed into place only when complete,
so a failure never leaves a half-written report. An existing folder is replaced only when it is empty or holds an
earlier gdlab report (it has the ``.gdlab-report`` marker); any other folder is left alone and an error says so.
"""

from __future__ import annotations

import base64
import errno
import html
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab._io import SPACE_ERRORS, clean_stale, holds_signals, temp_prefix

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from gdlab.result import Result
    from gdlab.workshop import Workshop

__all__ = ["Report", "ReportError", "write_workshop_report", "write_fit_report", "write_classifier_report",
           "render_html", "report_folder"]

MARKER = ".gdlab-report"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       max-width: 980px; margin: 0 auto; padding: 24px 28px 60px; line-height: 1.55; background: #fff; }
h1 { font-size: 1.9em; margin-bottom: 0.1em; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.subtitle { color: #555; margin-top: 0; }
figure { margin: 1.2em 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; margin-top: 0.3em; }
code, pre { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; background: #f6f8fa; }
code { padding: 1px 4px; border-radius: 3px; }
pre { padding: 10px 14px; border-radius: 6px; overflow-x: auto; line-height: 1.4; text-align: left; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
.scroll table { margin: 0.5em 0; }
.narrow { display: none; color: #555; font-size: 0.85em; margin-bottom: 0; }
@media (max-width: 600px) {
  .narrow { display: block; }
  body { padding: 12px 12px 40px; }
  table { font-size: 0.8em; }
  th, td { padding: 3px 5px; }
  nav ul { columns: 1; }
}
th, td { border: 1px solid #ddd; padding: 4px 9px; text-align: right; }
th { background: #f3f4f6; }
td:first-child, th:first-child { text-align: left; }
table.facts td { text-align: left; }
.answer { background: #eef6ee; border-left: 4px solid #2ca02c; padding: 8px 14px; margin: 1em 0; }
.note { background: #fff8e6; border-left: 4px solid #e0a800; padding: 8px 14px; margin: 1em 0; }
.banner { background: #fdecea; border: 1px solid #d93025; border-left: 6px solid #d93025; padding: 10px 14px;
          margin: 1em 0; font-weight: 500; }
nav ul { columns: 2; list-style: none; padding-left: 1em; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
"""


@dataclass(frozen=True)
class Report:
    """A written report: its folder, the HTML page and every file in it (relative names)."""

    folder: Path
    index: Path
    files: list[str]


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _esc(text: Any) -> str:
    return html.escape(str(text))


def render_html(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """One page: ``sections`` are (anchor id, heading, inner HTML)."""
    toc = "".join(f'<li><a href="#{a}">{_esc(h)}</a></li>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_esc(h)}</h2>{inner}</section>' for a, h, inner in sections)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from gdlab import __version__

    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="gdlab {__version__}"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1><p class=\"subtitle\">{subtitle}</p>"
            f"<nav><ul>{toc}</ul></nav>{body}<footer>Made by gdlab {__version__} on {stamp}. Self-contained: "
            "the images are embedded in this page and the PNG files beside it.</footer></body></html>")


def _figure_html(png: bytes, alt: str, caption: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""  # the same size on the page whatever the figure's dpi
    return (f'<figure><img src="{_data_uri(png, "image/png")}" alt="{_esc(alt)}"{size}>'
            f"<figcaption>{caption}</figcaption></figure>")


def _css_width(fig: Any) -> int:
    """The width in CSS pixels a figure gets on the page: as drawn at 110 dpi (the page's design size)."""
    return int(round(fig.get_figwidth() * 110))


def _check_dpi(dpi: Any) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not 50 <= dpi <= 600:
        raise ValueError(f"dpi must be an integer between 50 and 600 (110 for the screen, 200-300 for slides), "
                         f"got {dpi!r}.")
    return int(dpi)


def _frame_html(frame: pd.DataFrame, digits: int = 6) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if not math.isfinite(v):
                return "–"
            return f"{v:.{digits}g}"
        return _esc(v)

    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_COMPARISON_COLUMNS = {"method": "method", "intercept": "intercept", "mse": "MSE", "r2": "R²",
                       "gap": "gap to the minimum", "n_iter": "iterations", "seconds": "time"}


def _comparison_html(frame: pd.DataFrame) -> str:
    """The comparison table for people: the method, its weights, MSE, R², gap, iterations and time (ms)."""
    cols = {str(c).lower(): c for c in frame.columns}
    coef_cols = [c for c in frame.columns if re.fullmatch(r"(w\d+|coef\[\d+\])", str(c))]
    if not {"method", "mse"} <= set(cols):
        return _frame_html(frame)
    order = ["method", "intercept"]
    head = ["method", "intercept"] + [("slope" if len(coef_cols) == 1 else str(c)) for c in coef_cols]
    for key in ("mse", "r2", "gap", "n_iter", "seconds"):
        if key in cols:
            order.append(key)
            head.append(_COMPARISON_COLUMNS[key])
    rows = []
    for _, row in frame.iterrows():
        cells = []
        values = [row[cols["method"]], row[cols["intercept"]] if "intercept" in cols else math.nan]
        values += [row[c] for c in coef_cols] + [row[cols[k]] for k in order[2:]]
        kinds = ["text", "num"] + ["num"] * len(coef_cols) + order[2:]
        for v, kind in zip(values, kinds):
            missing = v is None or (isinstance(v, float) and not math.isfinite(v)) or str(v) in ("<NA>", "nan")
            if missing:
                cells.append("—")
            elif kind == "text":
                cells.append(_esc(v))
            elif kind == "n_iter":
                cells.append(f"{int(v)}")
            elif kind == "seconds":
                cells.append(f"{1000 * float(v):.2g} ms")
            elif kind == "gap":
                cells.append("0" if float(v) == 0 else f"{float(v):.2g}")
            else:
                cells.append(f"{float(v):.6g}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{_esc(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# ---- writing a folder atomically --------------------------------------------------------------------------------

INPLACE_NAME = "gdlab-report"  # temporary entries inside a destination that cannot be renamed (a mount point)
_SPACE_HINT = "free some space, or choose another folder"


class ReportError(ValueError):
    """The report folder could not be written (a full disk, a read-only file system...); nothing was left behind.

    ``folder`` is the destination; ``reason`` says why, without the advice (the command line adds its option)."""

    def __init__(self, folder: Path, reason: str, advice: str = "choose another folder"):
        super().__init__(f"cannot write the report to {folder}: {reason}; {advice}.")
        self.folder, self.reason, self.advice = folder, reason, advice


def _own_entry(name: str) -> bool:
    """A temporary entry gdlab made inside a destination it writes in place."""
    return name.startswith(f".{INPLACE_NAME}.")


def _is_report(folder: Path) -> bool:
    """A folder gdlab made: it holds the marker, or nothing at all (killed before the marker was written)."""
    try:
        return (folder / MARKER).exists() or not any(folder.iterdir())
    except OSError:
        return False


def _foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that are neither gdlab's temporary ones nor an empty lost+found of a mount point."""
    names = []
    for e in out.iterdir():
        if _own_entry(e.name):
            continue
        if e.name == "lost+found" and os.path.ismount(out):
            continue
        names.append(e.name)
    return names


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is a file; choose another --out folder or remove the file.")
    if out.is_dir() and _foreign_entries(out) and not (out / MARKER).exists():
        raise ValueError(f"{out} exists and holds files that are not a gdlab report; gdlab will not overwrite "
                         "them. Choose another --out folder or empty that one.")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise ValueError(f"cannot write the report to {out}: the folder {parent} does not exist; create it or "
                         "choose another --out.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the report to {out}: the folder {parent} is not writable; choose "
                         "another --out.")


def _clean_leftovers(out: Path) -> None:
    """Remove the temporary folders of earlier runs that were killed (see :func:`gdlab._io.clean_stale`); a report
    moved aside by a run killed between its two renames is moved back when the destination is missing."""
    parent = out.parent if str(out.parent) else Path(".")

    def restore(path: Path) -> bool:
        if path.name.endswith("-old") or re.search(r"\.old-\d+$", path.name):
            if not out.exists() and (path / MARKER).exists():
                os.replace(path, out)
                return True
        return False

    clean_stale(parent, out.name, is_ours=_is_report, restore=restore)
    if out.is_dir():
        clean_stale(out, INPLACE_NAME, is_ours=_is_report)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(src), str(dst))


_UNRENAMABLE = {errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EINVAL}


class report_folder:
    """Context manager: a temporary folder beside ``out``, moved onto ``out`` only when the block succeeds.

    A destination that cannot be renamed (a mount point, a bind mount) is written in place instead: the new report
    is built in a temporary folder inside it, and its files replace the old ones only when it is complete. Leftovers
    of earlier runs that were killed are removed first; on every way out (an error, Ctrl-C, SIGTERM, a full disk)
    the temporary folder is removed.
    """

    def __init__(self, out: Any):
        self.out = Path(out)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        _clean_leftovers(self.out)
        _check_destination(self.out)
        parent = self.out.parent if str(self.out.parent) else Path(".")
        self.inplace = self.out.is_dir() and os.path.ismount(self.out)
        where, name = (self.out, INPLACE_NAME) if self.inplace else (parent, self.out.name)
        try:
            self._make(where, name)
        except BaseException as exc:
            self._discard()
            if isinstance(exc, OSError):
                raise self._error(exc) from None
            raise
        assert self.tmp is not None
        return self.tmp

    @holds_signals
    def _make(self, where: Path, name: str) -> None:
        """Make the temporary folder, record its name and mark it as gdlab's, with no signal in between (one that
        arrives meanwhile is raised once ``self.tmp`` names the folder, so that it is removed)."""
        self.tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(name), suffix=".tmp", dir=where))
        (self.tmp / MARKER).write_text("written by gdlab; this folder may be replaced by the next report\n")

    def _error(self, exc: OSError) -> ReportError:
        reason = (exc.strerror or str(exc)).lower()
        if exc.errno in SPACE_ERRORS:
            return ReportError(self.out, "no space left on the device", _SPACE_HINT)
        return ReportError(self.out, reason)

    @holds_signals
    def _discard(self) -> None:
        """Remove the temporary folder; idempotent, and not cut short by a signal (it is held until the end)."""
        tmp, self.tmp = self.tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    @holds_signals
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # held from its first instruction: a signal that lands now is raised once the folder is in place or gone
        if exc_type is not None or self.tmp is None:
            self._discard()
            if isinstance(exc, OSError):
                raise self._error(exc) from None
            return
        try:
            if self.inplace:
                self._commit_inplace(self.tmp)
            else:
                self._commit()
        except BaseException as err:
            self._discard()
            if isinstance(err, OSError):
                raise self._error(err) from None
            raise
        self.tmp = None

    def _commit(self) -> None:
        assert self.tmp is not None
        old = None
        if self.out.exists():
            old = self.out.with_name(f"{temp_prefix(self.out.name)}old")
            try:
                os.replace(self.out, old)
            except OSError as exc:
                if exc.errno not in _UNRENAMABLE:
                    raise
                self._commit_inplace(self.tmp)  # the destination cannot be renamed: replace its files instead
                return
        try:
            os.replace(self.tmp, self.out)
        except BaseException:
            if old is not None:
                os.replace(old, self.out)
            raise
        self.tmp = None
        mask = _umask()
        os.chmod(self.out, 0o777 & ~mask)
        self._chmod_files(mask)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _chmod_files(self, mask: int) -> None:
        for f in self.out.iterdir():  # mkstemp makes private files; a report is for reading
            if f.is_file() and not _own_entry(f.name):
                os.chmod(f, 0o666 & ~mask)

    def _commit_inplace(self, new: Path) -> None:
        """Replace the files of ``out`` by those of ``new``: the old ones are first moved into a folder inside
        ``out`` (moved back if anything fails), then the new ones are moved in, the marker first (so that a run
        killed even here leaves a folder the next run recognises as its own)."""
        old = self.out / f"{temp_prefix(INPLACE_NAME)}old"
        old.mkdir()
        keep = {new.name, old.name}
        moved_old: list[str] = []
        moved_new: list[str] = []
        try:
            for e in list(self.out.iterdir()):
                if e.name in keep or _own_entry(e.name) or (e.name == "lost+found" and os.path.ismount(self.out)):
                    continue
                os.replace(e, old / e.name)
                moved_old.append(e.name)
            names = sorted((e.name for e in new.iterdir()), key=lambda n: n != MARKER)
            for n in names:
                _move(new / n, self.out / n)
                moved_new.append(n)
        except BaseException:
            for n in moved_new:
                shutil.rmtree(self.out / n, ignore_errors=True) if (self.out / n).is_dir() else \
                    (self.out / n).unlink(missing_ok=True)
            for n in moved_old:
                os.replace(old / n, self.out / n)
            shutil.rmtree(old, ignore_errors=True)
            raise
        shutil.rmtree(new, ignore_errors=True)
        self.tmp = None
        self._chmod_files(_umask())
        shutil.rmtree(old, ignore_errors=True)


@holds_signals  # a signal between the two calls would leave the umask at 0
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- the workshop report ----------------------------------------------------------------------------------------

def _panels_text(lr: Any, ln: Any) -> str:
    """Section 4's words on the four panels, each number read off its run (the error along each eigen-direction of
    the Hessian: across the valley is the steep one, lambda = L; along its floor the flat one, lambda = mu)."""
    from gdlab.workshop import eigen_error_ratios

    (slow_label, slow), (_, fast), (_, osc), (_, div) = list(lr.runs.items())[:4]
    curv = ln.curvature

    def across_along(r: Any) -> tuple[float, float]:
        lam, ratio = eigen_error_ratios(r, ln)
        return float(ratio[-1]), float(ratio[0])  # eigh: increasing, so the steep direction is last

    s_across, s_along = across_along(slow)
    f_across, f_along = across_along(fast)
    o_across, o_along = across_along(osc)
    eta = {k: float(r.learning_rate) for k, r in zip("sfod", (slow, fast, osc, div))}
    return (
        "<p>The four panels show what the weights do on the map of the error (the contour lines join weights of "
        "equal MSE; the star is the minimum). The valley runs from the upper left to the lower right: across it "
        f"the error surface is steep (curvature L = {curv.L:.3g}), along its floor it is flat (mu = {curv.mu:.3g}). "
        "Each iteration multiplies the error across the valley by 1 − eta·L and the error along it by "
        f"1 − eta·mu. <b>Too small a step</b> (eta = {eta['s']:g}) spends its {slow.n_iter} iterations coming "
        f"down the steep side: across the valley its error is down to {100 * s_across:.0f}% of the start's, but "
        f"along the floor it still has {100 * s_along:.0f}% of the way to go, so it has only just turned towards "
        f"the minimum (MSE {slow.loss:.3g}). <b>The best constant step</b> (eta = {eta['f']:.3f}) overshoots "
        f"across the valley, but shrinks both errors by the same factor, {curv.best_rate:.3f} per iteration: "
        f"after {fast.n_iter} iterations both are down to {100 * max(f_across, f_along):.1f}% (MSE "
        f"{fast.loss:.4g}, the minimum is {ln.closed.loss:.4g}). <b>Just under 2/L</b> (eta = {eta['o']:.3f}) "
        f"each zig-zag across the valley is only {abs(1 - eta['o'] * curv.L):.2f} times the last, so after "
        f"{osc.n_iter} iterations {100 * o_across:.0f}% of it is left (MSE {osc.loss:.3g}), while along the floor "
        f"it is down to {100 * o_along:.1f}%. <b>Just over 2/L</b> (eta = {eta['d']:.3f}) each zig-zag is "
        f"{abs(1 - eta['d'] * curv.L):.2f} times wider than the last and the run flies off the map (it diverged "
        f"at iteration {div.n_iter}).</p>")


def _optimizers_text(ws: Workshop, add_png: Callable[[str, Any, str, str], str]) -> str:
    from gdlab import plots

    ct, ln = ws.contour, ws.line
    opt = ln.closed.params
    mom, nes, gd, adam = (ct.paths[k] for k in ("momentum", "nesterov", "gd", "adam"))
    beta = float(mom.extra["optimizer"].hyperparameters["beta"])
    P = mom.trajectory.params
    hb = ln.curvature.heavy_ball
    hb_real, k_real = None, math.nan
    if ws.scaling.real:
        real_std = next(iter(ws.scaling.real.values()))[1].curvature
        hb_real, k_real = real_std.heavy_ball, real_std.condition_number
    settings = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)} — MSE {ct.paths[k].loss:.5f} after "
                       f"{ct.paths[k].n_iter} iterations</li>" for k, v in ct.settings.items())
    return (
        "<p>The MSE of a line is a bowl over (intercept, slope); its contour lines are ellipses, long and thin "
        "because the intercept and the slope pull against each other. Plain gradient descent (at the workshop's "
        f"eta = {ln.data.eta:g}) always steps straight downhill, across the ellipses, and then creeps along the "
        f"floor of the valley: after {gd.n_iter} iterations its MSE is {gd.loss:.4g} (the minimum is "
        f"{ln.closed.loss:.4g}). Momentum and Nesterov's method, at the same eta, keep {100 * beta:.0f}% of their "
        f"previous step (beta = {beta:g}) and build up speed: momentum swings far past the minimum (its slope "
        f"reaches {P[:, 1].max():.1f}, the minimum's is {opt[1]:.2f}; its intercept reaches {P[:, 0].max():.1f} "
        f"against {opt[0]:.2f}) and circles back in; Nesterov's method, which looks ahead before it steps, swings "
        f"less (slope up to {nes.trajectory.params[:, 1].max():.1f}). Both end nearer the minimum than gd: MSE "
        f"{mom.loss:.5g} and {nes.loss:.5g}. Adam divides each coordinate's step by its own running size of the "
        f"gradient, so it moves at a nearly constant speed and circles in towards the minimum (MSE {adam.loss:.4g} "
        "after the same iterations). All four start at the workshop's random weights (square); the star is the "
        "closed form, the Normal Equation.</p>"
        + add_png("06_contour.png", plots.contour_figure(ct, ln), "optimizer paths on the MSE contour",
                  "Paths of gd, momentum, nesterov and adam on the contour of the MSE; the star is the Normal "
                  "Equation.")
        + f"<ul>{settings}</ul>"
        + f'<div class="note"><b>Which beta?</b> beta = {beta:g} is the default of <code>gdlab.descend</code> and '
          "of the explorer, and the value most courses use. It is not the best one for this valley: Polyak's "
          f"heavy ball, beta = ((√κ − 1)/(√κ + 1))² with eta = 4/(√L + √mu)², gives beta = {hb['beta']:.2f} and "
          f"eta = {hb['learning_rate']:.3f} here (κ = {ln.curvature.condition_number:.3g}): no swing, and the "
          f"error shrinks by {hb['rate']:.3f} per iteration. That is what <code>gdlab fit --optimizer momentum"
          "</code> uses with its default <code>--lr auto</code>: it plans eta and beta from the curvature, in the "
          "standardised coordinates it fits in, so its beta depends on the data: 0 for this one feature, whose "
          "standardised condition number is 1, and closer to 1 the worse the conditioning"
          + (f" ({hb_real['beta']:.2f} for the standardised diabetes data of section 8, κ = {k_real:.3g})"
             if hb_real else "") + ".</div>")


def _gdlab_row_settings(row: Any) -> str:
    r = row.result
    where = "standardised features" if r.scaling == "standardize" else "raw features"
    how = r.extra.get("auto") or f"learning rate {float(r.learning_rate):.4g}"
    return f"{how}, on {where}"


def _comparison_section(ws: Workshop) -> str:
    frame = ws.comparison_frame
    table = ws.comparison
    comparison = _comparison_html(frame)
    if "converged" in frame.columns:
        slow = [str(m) for m, c in zip(frame["method"], frame["converged"]) if c is False or c == 0]
        if slow:
            comparison += (f"<p>Not converged within their iteration budget: {_esc(', '.join(slow))}. Adaptive "
                           "methods such as Adam scale their steps for noisy mini-batch gradients; on a small, "
                           "exact full-batch problem like this one, plain or momentum descent at a step chosen "
                           "from the curvature gets there first.</p>")
    rows = [r for r in table.rows if r.result is not None]
    settings = "".join(f"<li><b>{_esc(r.method)}</b>: {_esc(_gdlab_row_settings(r))}; {r.n_iter} iteration(s)"
                       "</li>" for r in rows)
    std = [r for r in rows if r.result.scaling == "standardize" and r.result.curvature is not None]
    why = ""
    if std:
        k_std = std[0].result.curvature.condition_number
        k_raw = ws.line.curvature.condition_number
        why = (f"<p>These rows are not the runs of section 6: <code>gdlab.compare</code> uses gdlab's defaults, "
               f"<code>learning_rate='auto'</code> on standardised features, and each row's step is the one "
               f"listed. Standardising the one feature turns the condition number {k_raw:.3g} of sections 4–6 "
               f"into {k_std:.3g}: the valley becomes a round bowl, and a step at its 2/(L+mu) lands on the "
               "minimum at once (section 8 shows it). That is why gd needs one iteration here and dozens "
               "there.</p>")
    return (
        "<p>The workshop ends: <i>this is already implemented in sklearn under SGDRegressor; feel free to check "
        "that this produces the same result</i>. Here is the check, on the 50 points: gdlab's gradient descent, "
        "the Normal Equation, and scikit-learn's SGDRegressor and LinearRegression. MSE is the workshop's "
        "(mean of the squared residuals); the gap is the MSE above the exact minimum (a tiny negative "
        "gap is rounding); the times are one run on this machine. (SGDRegressor steps one "
        "sample at a time with a decaying step, so it stops near the minimum rather than at it.)</p>"
        + f'<p class="narrow">Scroll the table sideways for every column.</p><div class="scroll">{comparison}</div>'
        + (f"<p>The settings of gdlab's rows:</p><ul>{settings}</ul>{why}" if rows else "")
        + f"<p style=\"font-size:0.85em;color:#666\">Table made by {_esc(ws.comparison_source)}.</p>")


def _scaling_text(ws: Workshop, add_png: Callable[[str, Any, str, str], str]) -> str:
    from gdlab import plots
    from gdlab.workshop import first_within

    sc = ws.scaling
    raw, std = sc.line_raw, sc.line_standardized
    n_raw, n_std = first_within(raw, sc.close_enough), first_within(std, sc.close_enough)

    def count(r: Any, n: float, where: str) -> str:
        if math.isfinite(n):
            return f"{where} it is within {100 * sc.close_enough:g}% of the minimum from iteration {n:.0f}"
        return (f"{where} it is still {100 * (r.loss - r.optimum_loss) / r.optimum_loss:.2g}% above the minimum "
                f"after {r.n_iter} iterations")

    out = (
        f"<p>Gradient descent crawls when the valley is long and thin, and how long and thin it is depends on the "
        f"units of the features. Standardising a feature, z = (x − mean)/std (here mean {sc.center:.4f}, std "
        f"{sc.scale:.4f}), changes nothing about the fitted line — the same line, written in z's coordinates — "
        f"but it changes the error surface: for one feature it makes the Hessian a multiple of the identity. "
        f"The condition number falls from {raw.curvature.condition_number:.3g} to "
        f"{std.curvature.condition_number:.3g} and the ellipses become circles. Gradient descent at each one's "
        f"best constant step: {count(raw, n_raw, 'raw,')}; {count(std, n_std, 'standardised,')}.</p>"
        + add_png("08_scaling.png", plots.scaling_figure(sc, ws.line), "raw and standardised contours",
                  "The MSE over (intercept, slope) for the raw feature and for the standardised one (equal scales "
                  "on both axes), with gd at each one's best constant step."))
    if sc.real:
        rows = []
        for name, (r_raw, r_std) in sc.real.items():
            for label, r in (("raw", r_raw), ("standardised", r_std)):
                gap = (r.loss - r.optimum_loss) / r.optimum_loss
                rows.append(f"<tr><td>{_esc(name)}, {label}</td><td>{r.curvature.condition_number:.3g}</td>"
                            f"<td>{_esc(format(r.learning_rate, '.3g'))}</td><td>{r.loss:.6g}</td>"
                            f"<td>{r.optimum_loss:.6g}</td><td>{gap:.2g}</td></tr>")
        name, (r_raw, r_std) = next(iter(sc.real.items()))
        out += (
            f"<p>On real data the difference is far larger. scikit-learn's <code>diabetes</code> data "
            f"({r_raw.coef.size} features in their own units, <code>load_diabetes(scaled=False)</code>) has "
            f"condition number {r_raw.curvature.condition_number:.2g}; standardised, "
            f"{r_std.curvature.condition_number:.3g}. The same descent — gd at the best constant step, "
            f"{sc.real_iterations} iterations — crawls on the raw features (its MSE is still {r_raw.loss:.5g}, "
            f"{r_raw.loss / r_raw.optimum_loss:.2g} times the minimum {r_raw.optimum_loss:.5g}) and converges on "
            f"the standardised ones (MSE {r_std.loss:.5g}, "
            f"{100 * (r_std.loss - r_std.optimum_loss) / r_std.optimum_loss:.2g}% above the minimum).</p>"
            '<div class="scroll"><table><thead><tr><th>data</th><th>condition number</th><th>step 2/(L+mu)</th>'
            f"<th>MSE after {sc.real_iterations} iterations</th><th>minimum MSE</th><th>relative gap</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
            "<p>This is why <code>gdlab fit</code> standardises by default with <code>--lr auto</code> (and "
            "reports the coefficients in the original units).</p>")
    return out


def _misclassified(params: Any, X: np.ndarray, y: np.ndarray) -> int:
    """Points on the wrong side of the boundary w0 + w1 x1 + w2 x2 = 0 (a point on it counts as wrong)."""
    eta = params[0] + X @ np.asarray(params[1:], dtype=float)
    return int(np.sum((eta > 0) != (y == 1)))


def boundary_angle(params: Any, optimum: Any) -> float:
    """The angle in degrees between the boundary of ``params`` and the minimum's (between their normals (w1, w2))."""
    a, b = np.asarray(params[1:], dtype=float), np.asarray(optimum[1:], dtype=float)
    cos = float(a @ b) / (float(np.linalg.norm(a)) * float(np.linalg.norm(b)))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def _rate_run_words(part: Any, label: str, r: Any) -> str:
    """What one run of the learning-rate panel does, read off its iterates."""
    from gdlab.workshop import repeating_cycle

    tr = r.trajectory
    n = part.first_within(r)
    cycle = repeating_cycle(tr.params)
    if math.isfinite(n) and cycle == 1 or (math.isfinite(n) and part.gap(tr.loss[-1]) <= part.close_enough
                                            * part.optimum_loss):
        return (f"<b>{_esc(label)}</b>: within {100 * part.close_enough:g}% of the minimum from iteration {n:.0f}, "
                f"and {_gap_text(part.gap(r.loss))} after {r.n_iter}")
    if cycle >= 2:
        values = tr.loss[-cycle:]
        return (f"<b>{_esc(label)}</b>: never gets there; the weights settle into a cycle of {cycle} points, the "
                f"log-loss alternating between {values.min():.4f} and {values.max():.4f}")
    return (f"<b>{_esc(label)}</b>: not yet within {100 * part.close_enough:g}% after {r.n_iter} iterations "
            f"(the gap is {_gap_text(part.gap(r.loss))})")


def _fixed(v: float, digits: int = 3) -> str:
    """``v`` to ``digits`` decimals, without the "-0.000" of a value that rounds to zero from below."""
    return f"{round(float(v), digits) + 0.0:.{digits}f}"


def _gap_text(gap: float) -> str:
    return "at the minimum to rounding" if gap <= 1e-15 else f"{gap:.2g} above the minimum"


def _no_closed_form_text(ws: Workshop, add_png: Callable[[str, Any, str, str], str]) -> str:
    from gdlab import plots

    p = ws.no_closed_form
    d, gd, nt = p.data, p.descent, p.newton
    X, y = d.X, d.y
    opt, f_opt = p.optimum, p.optimum_loss
    curv = gd.curvature
    lam = p.hessian_eigenvalues
    n_gd = p.first_within(gd)
    rows = []
    for n in p.snapshots:
        w = p.weights_after(n)
        rows.append(f"<tr><td>{n}</td><td>{_fixed(w[0])}</td><td>{_fixed(w[1])}</td><td>{_fixed(w[2])}</td>"
                    f"<td>{float(gd.trajectory.loss[int(np.searchsorted(gd.trajectory.iteration, n))]):.4f}</td>"
                    f"<td>{_misclassified(w, X, y)}</td><td>{boundary_angle(w, opt):.1f}°</td>"
                    f"<td>{100 * np.linalg.norm(w[1:]) / np.linalg.norm(opt[1:]):.0f}%</td></tr>")
    rows.append(f"<tr><td>minimum (Newton)</td><td>{opt[0]:.3f}</td><td>{opt[1]:.3f}</td><td>{opt[2]:.3f}</td>"
                f"<td>{f_opt:.4f}</td><td>{_misclassified(opt, X, y)}</td><td>0°</td><td>100%</td></tr>")
    table = ('<p class="narrow">Scroll the table sideways for every column.</p><div class="scroll"><table><thead>'
             "<tr><th>iteration</th><th>w0</th><th>w1</th><th>w2</th><th>log-loss</th><th>wrong side</th>"
             "<th>angle to the minimum's boundary</th><th>length of (w1, w2), of the minimum's</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table></div>")
    P = gd.trajectory.params
    angles = np.array([boundary_angle(w, opt) if np.any(w[1:]) else 90.0 for w in P])
    settled = np.nonzero(angles >= 2.0)[0]
    turned = int(gd.trajectory.iteration[settled[-1] + 1]) if settled.size and settled[-1] + 1 < len(P) else None
    w1 = p.weights_after(1)
    diff = X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0)
    tilt = math.degrees(math.atan2(abs(w1[2]), abs(w1[1])))
    gaps = p.gap(nt.loss)
    hop_words = ", ".join(f"{g:.1e}" if g > 1e-15 else "0 (rounding)" for g in gaps[1:])
    g_gd = p.gap(gd.trajectory.loss)
    k_ref = max(1, min(5, nt.n_iter))
    reach = np.nonzero(g_gd <= gaps[k_ref])[0]
    reach_text = (f"gradient descent at 2/L needs {int(gd.trajectory.iteration[reach[0]])} iterations to get as low"
                  if reach.size else f"gradient descent at 2/L does not get as low in {gd.n_iter} iterations")
    fast_label, fast = list(p.rate_runs.items())[2]
    runs = "".join(f"<li>{_rate_run_words(p, k, r)}.</li>" for k, r in p.rate_runs.items())
    sw = p.sweep
    stopped = [(float(eta), int(at)) for eta, at in zip(sw.learning_rates, sw.diverged_at) if at > 0]
    stopped_text = ""
    if stopped:
        stopped_text = (" Only the largest steps of the sweep bounced far enough out for gdlab's divergence test "
                        "(the loss rising for 10 iterations to 10 times its start) to stop them: "
                        + ", ".join(f"eta = {e:.3g} at iteration {a}" for e, a in stopped) + ".")
    last = p.gap(sw.final_loss[:, -1])
    ok = np.isfinite(last)
    best_eta = float(sw.learning_rates[ok][np.argmin(last[ok])])
    below = ok & (sw.learning_rates <= p.local_stable_step)
    above = np.nonzero(ok & (sw.learning_rates > p.local_stable_step))[0]
    jump_text = "."
    if below.any() and above.size:
        g_below, g_above = float(last[below][-1]), float(last[above[0]])
        if g_above > 10 * max(g_below, 1e-16):
            jump_text = (f"; at the last step up to 2/λ* it is {g_below:.2g}, at the next one, eta = "
                         f"{sw.learning_rates[above[0]]:.3g}, already {g_above:.2g}.")
    X_b = np.c_[np.ones(len(X)), X]
    grad_bound = float(np.max(np.linalg.norm(X_b, axis=1)))
    hop, ln, pic = p.one_hop, ws.line, ws.iterations_in_pictures
    hop_err = float(np.max(np.abs(hop.params[-1] - ln.closed.params)))
    ws_enough = pic.enough[next(iter(pic.runs))]
    lr_best = float(fast.learning_rate)

    intro = (
        "<p>The workshop begins: <i>for only a few algorithms an analytical solution exists</i>. Least squares is "
        "one of them — the Normal Equation — and so every section so far could check gradient descent against the "
        "exact answer. Logistic regression is the simplest model that has none. Here are "
        f"{len(y)} points of two classes ({int(np.sum(y == 0))} of class 0, {int(np.sum(y == 1))} of class 1) in "
        f"two features: two clouds with the same shape (within each, x1 and x2 are correlated {d.correlation:g}) "
        "whose centres "
        f"differ along x1 ({d.centres[0][0]:g} and {d.centres[1][0]:g}; <code>gdlab.datasets.workshop_classes()"
        "</code>). The model gives each point the probability P(class 1) = σ(w0 + w1 x1 + w2 x2), with σ(t) = "
        "1/(1 + e<sup>−t</sup>), and the error is the log-loss, the mean of −log of the probability it gave the "
        "true class. Its gradient, <code>(1/m) X_bᵀ (σ(X_b w) − y)</code>, is the workshop's with σ put round "
        "the prediction, and setting it to zero gives equations that no algebra solves: σ is not linear. So we "
        "roll down, as the workshop does. The clouds overlap, so no line separates the classes and the log-loss "
        f"has a lowest point: there the best line still leaves {_misclassified(opt, X, y)} points on the wrong "
        f"side (without the overlap the weights would grow for ever; gdlab says so with a SeparationWarning). "
        f"The curvature bound plays the part of section 4's L: σ' ≤ 1/4, so L = λ<sub>max</sub>(X_bᵀX_b)/(4m) = "
        f"{curv.L:.4g}, and the guaranteed step is <b>2/L = {curv.stable_step:.4g}</b>.</p>")
    boundary = (
        f"<p>Gradient descent from w = 0 at eta = 2/L. The decision boundary is the line w0 + w1 x1 + w2 x2 = 0, "
        f"where the model says 50/50 — the analogue of section 3's fitted line. At the start every point gets "
        f"probability 1/2 and there is no line; the first step points (w1, w2) along the difference of the "
        f"classes' means, ({diff[0]:.3f}, {diff[1]:.3f}), so the first boundary is within {tilt:.1f}° of the line "
        f"x1 = 0 (its w2 is {w1[2]:.4f}). Then it turns towards the minimum's; the table below the figure gives "
        "each boundary drawn, the points on its wrong side, its angle to the minimum's boundary, and how long "
        "(w1, w2) has grown. "
        + (f"From iteration {turned} on the boundary stays within 2° of the minimum's, while the weights keep "
           f"growing: the line has settled but the probabilities are still sharpening, and the log-loss still "
           f"falls. " if turned is not None else "")
        + f"It is within {100 * p.close_enough:g}% of the minimum log-loss, {f_opt:.4f} (found by Newton's method "
        f"below), from iteration {n_gd:.0f}.</p>"
        + add_png("10a_logistic_boundaries.png", plots.boundaries_figure(p),
                  "decision boundaries after 1 to 1000 iterations, and the log-loss against iteration",
                  f"Left: the two classes and the boundary after {', '.join(map(str, p.snapshots))} iterations "
                  "of gradient descent at 2/L; dashed, the minimum's. Right: the log-loss against iteration.")
        + table)
    surface = (
        "<p>The log-loss has three weights; to draw it over the two that set the boundary's direction, (w1, w2), "
        "the intercept w0 is re-fitted at every point of the map: each contour joins weights whose best log-loss "
        "over w0 is the same. The paths are drawn at their own (w1, w2), and their own intercepts move as they go, "
        "so a path's log-loss is at or above the contour it crosses. The valley is long and narrow, as in section "
        f"6: at the minimum the Hessian <code>X_bᵀ diag(p(1−p)) X_b / m</code> has eigenvalues {lam[0]:.3g}, "
        f"{lam[1]:.3g} and {lam[2]:.3g} (condition number {lam[-1] / lam[0]:.3g}). Gradient descent's steps are "
        "long on the steep walls and short on the flat floor, so its iterates crowd together as it crawls along "
        f"the valley to the minimum (w1 = {opt[1]:.3f}, w2 = {opt[2]:.3f}); Newton's method (red, described "
        f"below) gets there in {nt.n_iter} hops.</p>"
        + add_png("10b_logistic_surface.png", plots.log_loss_surface_figure(p),
                  "the log-loss surface over (w1, w2) with gradient descent's and Newton's paths",
                  "The log-loss over (w1, w2), the intercept re-fitted at each point; gradient descent at 2/L "
                  "(blue) and Newton's method (red) from w = 0; the star is the minimum."))
    rates = (
        "<p>What happens when you alter the learning rate? For least squares every step above 2/L diverged "
        "(section 4). The log-loss behaves differently, for two reasons. Its curvature σ(1 − σ) is 1/4 only "
        "where the model is unsure; near the minimum it is confident about most points and the curvature is "
        f"smaller: the Hessian's largest eigenvalue there is λ* = {lam[-1]:.4g}, against L = {curv.L:.4g}. So 2/L "
        f"is a guarantee, and steps up to <b>2/λ* = {p.local_stable_step:.4g}</b> "
        f"({p.local_stable_step / curv.stable_step:.2g} times 2/L) still converge once the run is near the "
        "minimum. And its gradient is bounded (by the largest |x_b|, "
        f"{grad_bound:.3g} here): a step that is too large throws the weights out and back rather than "
        "multiplying them at every step. The five runs on the left:</p>"
        f"<ul>{runs}</ul><p>On the right, every step of a sweep after {sw.iterations[0]} and "
        f"{sw.iterations[-1]} iterations. After {sw.iterations[-1]} the gap is smallest at eta = {best_eta:.3g}, "
        f"{best_eta / curv.stable_step:.2g} times 2/L" + jump_text + stopped_text + "</p>"
        + add_png("10c_logistic_learning_rate.png", plots.logistic_learning_rate_figure(p),
                  "log-loss gap against iteration for five steps, and against the step",
                  "Left: the log-loss above its minimum against iteration, five constant steps from w = 0. "
                  f"Right: after {sw.iterations[0]} and {sw.iterations[-1]} iterations, for each step of the "
                  "sweep; 2/L (red) and 2/λ* (dashed) marked."))
    newton = (
        "<p>The workshop says that updating by the full gradient equation would <i>jump straight to the "
        "bottom</i>. Newton's method makes that precise: it replaces the learning rate by the inverse of the "
        "curvature, <code>w ← w − H⁻¹ ∇F</code>, and so each hop lands on the bottom of the quadratic that has "
        "the loss's slope and curvature where it stands. For the log-loss H = <code>X_bᵀ diag(p(1−p)) X_b / m"
        "</code> changes from point to point (the iteration is also called IRLS, iteratively reweighted least "
        "squares), so the quadratic is only a local copy and it takes a few hops: the first ones gain little, "
        "the last ones double the number of correct digits (Newton's quadratic convergence). From w = 0 the gap "
        f"to the minimum after each hop: {hop_words}. To reach the gap of hop "
        f"{k_ref}, {gaps[k_ref]:.1e}, {reach_text}. The fastest constant step of the panel above, {_esc(fast_label)}, "
        f"is within {100 * p.close_enough:g}% after {p.first_within(fast):.0f} iterations, but that step is "
        "known only once the minimum is. A hop costs more than a step: it forms the (d+1)×(d+1) Hessian, "
        "about m(d+1)² multiplications, and solves it, about (d+1)³/3, where a gradient costs m(d+1). With two "
        "features that is nothing; with a hundred thousand, the Hessian alone has 10<sup>10</sup> entries — "
        "why large models are trained by gradient descent and its cousins.</p>"
        f"<p>For least squares the quadratic <i>is</i> the loss: H = <code>(2/m) X_bᵀ X_b</code> is the same "
        "everywhere, and one hop from any start lands on <code>(X_bᵀX_b)⁻¹ X_bᵀ y</code>, the Normal Equation. "
        f"From the workshop's random start w = [{hop.params[0][0]:.4f}, {hop.params[0][1]:.4f}] the hop lands on "
        f"[{hop.params[-1][0]:.4f}, {hop.params[-1][1]:.4f}]; the Normal Equation's is [{ln.closed.params[0]:.4f}, "
        f"{ln.closed.params[1]:.4f}] ("
        + ("the same numbers to the last bit" if hop_err == 0 else f"they differ by {hop_err:.1g}") + ")"
        + (", and a second hop finds nothing left to do. " if hop.n_iter == 1 else ". ")
        + f"Gradient descent at the workshop's eta = {ln.data.eta:g} takes {_iteration_words(ws_enough)} to "
        f"get within {100 * pic.close_enough:g}% of the minimum MSE (section 5).</p>"
        + add_png("10d_newton.png", plots.newton_figure(p, ln),
                  "Newton's method against gradient descent",
                  "Left: the log-loss above its minimum, Newton's hops against gradient descent's steps (log "
                  "axes). Right: least squares on the workshop's line — one Newton hop from the start to the "
                  f"Normal Equation's solution, and gradient descent's {ln.descent.n_iter} steps at eta = "
                  f"{ln.data.eta:g}."))
    return intro + boundary + surface + rates + newton


def _eigen_text(ws: Workshop, add_png: Callable[[str, Any, str, str], str]) -> str:
    from gdlab import plots
    from gdlab.workshop import MOMENTUM_BETA

    e, ln = ws.eigen, ws.line
    curv = ln.curvature
    mu, L = (float(v) for v in e.eigenvalues)
    V = e.eigenvectors
    (label0, run0), (_, run1) = list(e.gd_runs.items())[:2]
    C0, C1 = np.abs(e.components(run0)), np.abs(e.components(run1))
    eta = float(run0.learning_rate)
    hb = curv.heavy_ball
    mom = list(e.momentum_runs.items())
    rates = {label: curv.spectral_radius(e.momentum_eta, "momentum",
                                         float(r.extra["optimizer"].hyperparameters.get("beta", 0.0)))
             for label, r in mom}
    under = e.momentum_runs[mom[-1][0]]
    c_under = e.components(under)[:, 0]
    n_best = ws.iterations.actual_iterations[list(ws.iterations.runs)[-1]]  # gd at 2/(L+mu), section 5
    k_text = ""
    if ws.scaling.real:
        name, (r_raw, r_std) = next(iter(ws.scaling.real.items()))
        k_raw, k_std = r_raw.curvature.condition_number, r_std.curvature.condition_number
        n_of = lambda k: math.log(1e-8) / (2 * math.log((k - 1) / (k + 1)))  # noqa: E731
        k_text = (f" The {name} data of section 8 would need {n_of(k_raw):.2g} iterations raw (κ = {k_raw:.2g}) "
                  f"and {n_of(k_std):.3g} standardised (κ = {k_std:.3g}).")
    return (
        "<p>Sections 4 and 5 kept speaking of the error <i>across</i> and <i>along</i> the valley. Here is what "
        "that means. The MSE is a quadratic bowl, F(w) = F* + ½ (w − w*)ᵀ H (w − w*), with the Hessian "
        "<code>H = (2/m) X_bᵀ X_b</code>. H has two eigenvectors, at right angles: "
        f"v<sub>L</sub> = ({V[0, 1]:.3f}, {V[1, 1]:.3f}) with eigenvalue L = {L:.4f}, the steep direction across "
        f"the valley, and v<sub>mu</sub> = ({V[0, 0]:.3f}, {V[1, 0]:.3f}) with mu = {mu:.4f}, the flat one along "
        "its floor (the arrows, from the minimum). Write the error w − w* along them, c = Vᵀ(w − w*). The "
        "gradient of this bowl is H (w − w*), so a step of gradient descent is w ← w − eta H (w − w*), and since "
        "H v = λ v each component moves on its own: "
        "<b>c<sub>i</sub> ← (1 − eta λ<sub>i</sub>) c<sub>i</sub></b>. At the workshop's eta = "
        f"{eta:g} the steep component keeps {abs(1 - eta * L):.3f} of itself per step and the flat one "
        f"{abs(1 - eta * mu):.3f}: after {run0.n_iter} iterations the steep one is down to "
        f"{C0[-1, 1] / C0[0, 1]:.1e} of its start and the flat one still {C0[-1, 0] / C0[0, 0]:.2f} — the path "
        "first drops into the valley, then creeps along it. At 2/(L+mu) both components keep "
        f"{curv.best_rate:.3f} per step (measured after {run1.n_iter} iterations: "
        f"{(C1[-1, 0] / C1[0, 0]) ** (1 / run1.n_iter):.4f} and {(C1[-1, 1] / C1[0, 1]) ** (1 / run1.n_iter):.4f} "
        "per step).</p>"
        + add_png("11a_eigen_directions.png", plots.eigen_directions_figure(e, ln),
                  "the Hessian's eigen-directions on the contour, and the error along each",
                  "Left: the flat and steep eigen-directions of H drawn from the minimum, and gd at the workshop's "
                  "eta. Right: the size of the error along each direction, measured from the runs (markers) and "
                  "|1 − eta λ|<sup>t</sup> times its start (lines), at the workshop's eta and at 2/(L+mu).")
        + "<p>That is why the best constant step is where it is. The rate of the whole run is the larger of "
          "|1 − eta mu| and |1 − eta L|: a larger step helps the flat direction and, past 1/L, hurts the steep "
          "one, which starts to overshoot. The two are equal where 1 − eta mu = eta L − 1, at <b>eta = 2/(L+mu) "
          f"= {curv.best_step:.4f}</b>, and there the rate is (L − mu)/(L + mu) = (κ − 1)/(κ + 1) = "
          f"{curv.best_rate:.4f}. At 2/L = {curv.stable_step:.4f} the steep direction keeps all of itself "
          "(−1 per step), and past it grows. And that is why a large condition number κ = L/mu makes gradient "
          "descent crawl: with (κ − 1)/(κ + 1) ≈ 1 − 2/κ, shrinking the gap 10<sup>8</sup>-fold takes about "
          f"κ·ln(10<sup>8</sup>)/4 ≈ 4.6 κ iterations — {n_best:.0f} "
          f"measured for the workshop's line (κ = {curv.condition_number:.3g}, section 5).{k_text} No step fixes "
          "it: the step is capped by the steepest direction and the progress is set by the flattest. Scaling "
          "(section 8) and momentum change κ's effect.</p>"
        + add_png("11b_eigen_rates.png", plots.eigen_rates_figure(e, ln, ws.scaling),
                  "the rate against the step, and iterations against the condition number",
                  "Left: the error kept per step along each direction against eta; the rate is the larger of "
                  "the two, lowest at 2/(L+mu). Right: iterations to shrink the gap 10<sup>8</sup>-fold at the "
                  "best constant step against κ, with the report's data sets.")
        + "<p><b>Momentum.</b> With momentum (v ← ∇F + beta v, w ← w − eta v) each eigen-direction is a pair "
          "(c, v) multiplied by the 2 × 2 matrix [[1 − eta λ, −eta beta], [λ, beta]] at every step; its "
          "eigenvalues solve z² − (1 + beta − eta λ) z + beta = 0. The run converges when both roots of both "
          "directions are inside the unit circle: for 0 ≤ beta < 1 that is <b>eta < 2(1 + beta)/L</b> (the red "
          "line: momentum allows steps up to twice gd's 2/L). When (1 − √beta)² < eta λ < (1 + √beta)² the roots "
          "are complex with size √beta: the direction oscillates as it shrinks (under-damped). Below it the "
          "roots are real and the larger one is slow (over-damped). On the curve eta λ = (1 − √beta)² the roots "
          "meet: <b>critical damping</b>, the fastest the direction can settle without swinging. At the "
          f"workshop's eta = {e.momentum_eta:g} the flat direction is critically damped at beta = "
          f"(1 − √(eta mu))² = {e.critical_beta:.3f}. The library's default beta = {MOMENTUM_BETA:g} is "
          f"under-damped there: the flat error swings through zero to {c_under.min() / c_under[0]:.2f} of its "
          f"start (right). Per step: "
          + "; ".join(f"{_esc(k)}: {v:.3f}" for k, v in rates.items())
          + f". Polyak's heavy ball (the star, eta = {hb['learning_rate']:.3f}, beta = {hb['beta']:.3f}) "
          "critically damps both directions at once — the point where the two curves cross — with rate "
          f"(√κ − 1)/(√κ + 1) = {hb['rate']:.3f}, against gd's best {curv.best_rate:.3f}: the iterations grow "
          "like √κ instead of κ.</p>"
        + add_png("11c_momentum_region.png", plots.momentum_region_figure(e, ln),
                  "momentum's stability region and critical damping",
                  "Left: momentum's error kept per step (spectral radius) over (eta, beta) on the workshop's line; "
                  "pink diverges. Right: the flat direction's error under momentum at eta = "
                  f"{e.momentum_eta:g}, measured from gdlab's runs (markers) and from the 2 × 2 recurrence "
                  "(lines)."))



def _noise_text(ws: Workshop, add_png: Callable[[str, Any, str, str], str]) -> str:
    from gdlab import plots

    nz, ln = ws.noise, ws.line
    m = ln.data.X.shape[0]
    band = nz.band
    B, eta = band.batch_size, float(band.learning_rate)
    n = m // B
    f_star = nz.optimum_loss
    late = slice(band.loss.shape[1] // 2, None)
    const_mean = float(np.mean(band.loss[:, late] - f_star))
    dec_end = float(np.mean(nz.decaying.loss[:, -1] - f_star))
    const_end = float(np.mean(band.loss[:, -1] - f_star))
    floor_row = next(r for r in nz.floors if r["batch_size"] == B and r["learning_rate"] == eta)
    rows = "".join(
        f"<tr><td>{r['learning_rate']:g}</td><td>{r['batch_size']}</td><td>{r['epochs']} ({r['burn_in']})</td>"
        f"<td>{r['measured']:.3g} ± {r['standard_error']:.2g}</td><td>{r['formula']:.3g}</td>"
        f"<td>{(r['measured'] - r['formula']) / r['formula']:+.0%}</td>"
        f"<td>{r['learning_rate'] * (m - r['batch_size']) / (m - 1) * _trace_noise(ln) / (4 * r['batch_size']):.3g}"
        "</td></tr>" for r in nz.floors)
    table = ('<p class="narrow">Scroll the table sideways for every column.</p><div class="scroll"><table><thead>'
             "<tr><th>eta</th><th>B</th><th>epochs (burn-in)</th><th>measured ± s.e.</th><th>formula</th>"
             "<th>difference</th><th>eta tr(Σ)(m−B)/(4B(m−1))</th></tr></thead>"
             f"<tbody>{rows}</tbody></table></div>")
    trade = []
    for b, runs in nz.tradeoff.items():
        mean = np.mean(runs.loss - f_star, axis=0)
        trade.append(f"B = {b} ({m // b} updates per epoch): {mean[1]:.3g} after one epoch, {mean[-1]:.3g} "
                     f"after {mean.size - 1}")
    full_end = float(nz.full_batch.trajectory.loss[len(mean) - 1] - f_star)
    by_b = [r for r in nz.floors if r["learning_rate"] == nz.floors[0]["learning_rate"]]
    b_lo, b_hi = int(by_b[0]["batch_size"]), int(by_b[-1]["batch_size"])
    ratio_b = by_b[0]["formula"] / by_b[-1]["formula"]
    return (
        "<p>The workshop ends with scikit-learn's SGDRegressor, which steps on one sample at a time. Every "
        "section so far used the full gradient over all 50 points. A mini-batch of B points gives an estimate of "
        f"it, right on average but noisy. Here {band.params.shape[0]} runs, each with its own seed for the order "
        f"of the points, take batches of B = {B} (one epoch, a pass over the 50 points, is {n} updates) at the "
        f"workshop's eta = {eta:g}. Left, their paths, one point per epoch, make a band around full-batch "
        f"gradient descent at the same eta with as many updates. Right, the MSE above its minimum: at first the "
        "noise hardly matters, the gradient is large; near the minimum the gradient is small and the noise is "
        "not, so a constant step stops improving: the seeds' mean settles at a <b>noise floor</b> "
        f"(over the second half of the epochs {const_mean:.3g}; the formula below: {floor_row['stationary']:.3g}), "
        "and each run keeps jumping about within the band. A decaying step, eta_t = 1/(alpha (t0 + t)) with "
        f"alpha = mu/2 = {nz.decay['alpha']:.3g} and t0 = {nz.decay['t0']:.0f} updates (so it starts at "
        f"{eta:g}), shrinks the jumps as it goes: after {band.loss.shape[1] - 1} epochs its mean is "
        f"{dec_end:.2g} against the constant step's {const_end:.2g}, and it keeps falling (like 1/t).</p>"
        + add_png("12a_noise_band.png", plots.noise_band_figure(nz, ln),
                  "mini-batch paths of many seeds around full-batch gradient descent, and the noise floor",
                  f"Left: {band.params.shape[0]} seeds of mini-batch gd (B = {B}, eta = {eta:g}) on the contour, "
                  f"one point per epoch, and full-batch gd with as many updates (its minimum-side band is small "
                  "at this scale: see the right). Right: the MSE above its minimum, the seeds' mean and 10–90% "
                  "band, for the constant and the decaying step, and the formula's floor.")
        + "<p><b>How high is the floor?</b> Near the minimum w* the error e = w − w* follows e ← (I − eta H) e − "
          "eta ξ, where ξ, the batch's mean of the points' gradients at w*, g<sub>j</sub> = 2 x<sub>j</sub> "
          "(x<sub>j</sub>·w* − y<sub>j</sub>), is the noise (the 50 of them sum to zero). Along each "
          "eigen-direction of section 11 this is c ← ρ c − eta ξ<sub>i</sub>, ρ = 1 − eta λ<sub>i</sub>. If "
          "the batches were independent draws, the stationary variance would be eta² s/B / (1 − ρ²), s the "
          "variance of one point's gradient along the direction, and the excess MSE ½ Σ λ<sub>i</sub> "
          "var<sub>i</sub> ≈ <b>eta tr(Σ<sub>g</sub>) / (4B)</b> for small eta (Σ<sub>g</sub> the points' "
          "gradient covariance at the minimum): proportional to the step, inversely to the batch (Mandt, "
          "Hoffman &amp; Blei, <i>Stochastic gradient descent as approximate Bayesian inference</i>, JMLR 2017, "
          "in discrete time; Bottou, Curtis &amp; Nocedal, SIAM Review 2018, Thm. 4.6). gdlab, like "
          "scikit-learn, reshuffles the points each epoch and takes the batches without replacement, so within "
          "an epoch the noises are not independent: one batch has variance s(m − B)/(B(m − 1)), two batches of "
          "the same epoch covariance −s/(m − 1). Summing the epoch's n = m/B steps with their weights eta "
          "ρ<sup>n−k</sup> gives the variance at the end of each epoch exactly (for this linear model, leaving "
          "out the part of the noise that grows with e), <code>gdlab.workshop.noise_floor</code>: when an epoch "
          "is short against the relaxation time 1/(eta λ) the noise cancels within it and the floor is lower "
          "than the independent-draws value (Mishchenko, Khaled &amp; Richtárik, <i>Random reshuffling</i>, "
          "NeurIPS 2020). The table: runs started at the minimum, the mean over the epochs after the burn-in "
          f"and over {nz.floor_seeds} seeds, with its standard error from the seeds' means; the last column is "
          "the independent-draws value. The left-out part of the noise is of relative size about eta |x|²/B: it "
          "shows at the largest steps and the smallest batches, where the measured floor is a few per cent "
          "above the formula.</p>"
        + table
        + f"<p><b>The batch-size trade-off.</b> Every epoch reads each point once, so its gradient work is the "
          f"same for every B; what B changes is how many updates an epoch makes ({m} for B = 1, one for the full "
          f"batch) and how noisy each is. Small batches get near the minimum in few epochs and then sit on a high "
          f"floor; large ones go slowly and settle lower; the full batch has no floor but one step per epoch. At "
          f"eta = {eta:g} (the seeds' mean): " + "; ".join(trade) + f"; full batch {full_end:.3g} after "
          f"{len(mean) - 1}. The floor falls faster than 1/B here (from B = {b_lo} to B = {b_hi} it falls "
          f"{ratio_b:.1f}-fold, where 1/B alone would give {b_hi // b_lo}-fold): with fewer updates per epoch the "
          "reshuffled batches' noise cancels more within each epoch.</p>"
        + add_png("12b_noise_floor.png", plots.noise_floor_figure(nz, ln),
                  "the noise floor against batch size and step, and the batch-size trade-off",
                  "Left and middle: the measured floor (±2 standard errors) against B and against eta, with the "
                  "formula. Right: the MSE above its minimum against epoch for B = "
                  + ", ".join(str(b) for b in nz.tradeoff) + f" and the full batch at eta = {eta:g}; dashed, each "
                  "B's floor."))


def _trace_noise(ln: Any) -> float:
    """tr(Sigma_g): the total variance of one point's gradient at the minimum (the points' gradients sum to 0)."""
    X_b = np.c_[np.ones(ln.data.X.shape[0]), ln.data.X]
    g = 2.0 * X_b * (X_b @ ln.closed.params - ln.data.y)[:, None]
    return float(np.mean(np.sum(g * g, axis=1)))


def _iteration_words(n: float) -> str:
    return f"{n:.0f} iterations" if math.isfinite(n) else "more than its whole run"


def _workshop_sections(ws: Workshop, add_png: Callable[[str, Any, str, str], str], gif_html: str
                       ) -> list[tuple[str, str, str]]:
    from gdlab import plots

    m, ln, lr, it, ct = ws.mean, ws.line, ws.learning_rate, ws.iterations, ws.contour
    curv = ln.curvature
    answers = ws.answers()
    wne = ln.closed.params
    sections = []

    sections.append(("data", "1. Data around 2.0, and three guesses at its centre", (
        "<p>The workshop starts with 1000 numbers drawn around 2.0 (a normal distribution with standard deviation "
        "0.3; <code>np.random.seed(42)</code>, exactly the workshop's numbers). Each point is drawn at a random "
        "height only so that they do not sit on top of each other. The dashed black lines are two guesses at the "
        "centre, 1.5 and 2.5; the red line is the best one, 2.0. The best guess is the mean, but imagine we "
        "could not compute it: how would we find it?</p>"
        + add_png("01_data.png", plots.mean_data_figure(m), "1000 points and candidate lines",
                  "The workshop's first figure: the data and candidate estimates 1.5, 2.0 and 2.5."))))

    sections.append(("error-curve", "2. The error curve, and gradient descent rolling down it", (
        f"<p>Slide a candidate c across the data and compute the mean squared error at each of 40 candidates "
        f"between 1 and 3: the blue curve. It is a parabola whose lowest point is the mean of the data, "
        f"c = {m.mean:.4f} (the best of the 40 grid candidates is {m.best_candidate:.4f}). Gradient descent does "
        f"not need the curve: from a start (c = {m.start:g}) it computes the slope of the error there, "
        f"2 (c - mean), and steps downhill by the learning rate times that slope (eta = {m.learning_rate:g}). "
        f"The red dots are its first {len(m.steps) - 1} steps: big where the curve is steep, smaller and smaller "
        f"as the slope flattens near the bottom (it ends at c = {m.steps[-1]:.4f}).</p>"
        + add_png("02_error_curve.png", plots.error_curve_figure(m), "MSE curve with gradient descent steps",
                  "MSE over the candidates, its minimum at the mean (star), and the gradient descent steps."))))

    w_rows = "".join(f"<tr><td>{t}</td><td>{w[0]:.4f}</td><td>{w[1]:.4f}</td><td>{loss:.4f}</td></tr>"
                     for t, w, loss in zip(ln.descent.trajectory.iteration, ln.weights, ln.descent.trajectory.loss))
    sections.append(("line", "3. Gradient descent fits a line: 10 iterations at eta = 0.1", (
        "<p>Now a straight line through 50 points made as <code>y = 8 + 6x + noise</code>. The weights are "
        "<code>w = [intercept, slope]</code>, started at random, and each iteration moves them against the "
        "gradient of the MSE, <code>2/m X_bᵀ (X_b w − y)</code>, times eta = 0.1. Each blue line is the fit after "
        "one iteration (darker is later); the dashed black line is the exact answer from the Normal Equation.</p>"
        '<div class="note"><b>Two slips in the workshop\'s code are fixed here.</b> Its gradient line lost its '
        "middle (<code>gradients = 2/m * - y)</code>); it is <code>gradients = 2/m * X_b.T.dot(X_b.dot(w) - y)"
        "</code>. And <code>w_old</code> was never filled, so the plot of \"GD iterations\" drew nothing; the loop "
        "must keep <code>w_old.append(w.copy())</code> after each update.</div>"
        + add_png("03_line_iterations.png", plots.line_iterations_figure(ln), "fitted lines after each iteration",
                  "The fitted line after each of the 10 iterations (axes [0, 2, 8, 22] as in the workshop).")
        + f'<div class="answer">{_esc(answers["weights"])}</div>'
        + "<details><summary>The weights after each iteration</summary><table><thead><tr><th>iteration</th>"
          "<th>intercept w0</th><th>slope w1</th><th>MSE</th></tr></thead><tbody>"
        + w_rows + f"<tr><td>Normal Equation</td><td>{wne[0]:.4f}</td><td>{wne[1]:.4f}</td>"
        f"<td>{ln.closed.loss:.4f}</td></tr></tbody></table></details>")))

    sw = lr.sweep
    at_stable = np.nonzero(np.isclose(sw.learning_rates, curv.stable_step, rtol=1e-12, atol=0))[0]
    stable_text = ""
    if at_stable.size:
        stable_loss = float(sw.final_loss[at_stable[0], -1])
        stable_text = (f" Exactly at 2/L the run neither converges nor diverges: the error along the steepest "
                       f"direction is multiplied by 1 − (2/L)·L = −1 at every step, so it flips sign and keeps its "
                       f"size, and after {sw.iterations[-1]} iterations the MSE is still {stable_loss:.4g} "
                       f"(the arrow).")
    sections.append(("learning-rate", "4. Task: what happens when you alter the learning rate?", (
        f"<p>Run the same descent at many learning rates and look at the error after 10, 100 and 1000 iterations: "
        f"on the left every rate of the sweep (log axes), on the right the grey band near the limit on a linear "
        f"axis. Small steps are safe but slow: after 10 iterations at eta = {sw.learning_rates[0]:.3g} the MSE is "
        f"{sw.final_loss[0, 0]:.4g}, against {sw.initial_loss:.4g} at the start. Larger steps get further, up to a "
        f"limit set by the curvature of the error surface: L = {curv.L:.4f}, the largest eigenvalue of the "
        f"Hessian <code>(2/m) X_bᵀ X_b</code>. Above <b>2/L = {curv.stable_step:.4f}</b> (red line) every run "
        f"diverges: the error grows at every step (crosses at the top).{stable_text} The green dashed line is the "
        f"best constant step, <b>2/(L+mu) = {curv.best_step:.4f}</b>, where mu = {curv.mu:.4f} is the smallest "
        f"eigenvalue.</p>"
        + add_png("04a_learning_rate.png", plots.learning_rate_figure(lr), "final loss against learning rate",
                  "MSE after 10, 100 and 1000 iterations for each learning rate, with 2/L and 2/(L+mu); right: "
                  "the rates near 2/L.")
        + _panels_text(lr, ln)
        + add_png("04b_learning_rate_panels.png", plots.learning_rate_panels_figure(lr, ln),
                  "slow, fast, oscillating and diverging runs",
                  "Slow, fast, oscillating and diverging gradient descent on the contour of the MSE.")
        + f'<div class="answer">{_esc(answers["learning_rate"])}</div>')))

    pic = ws.iterations_in_pictures
    ws_run = pic.workshop_run
    snap = ", ".join(f"{n}: {ws_run.trajectory.loss[int(np.searchsorted(ws_run.trajectory.iteration, n))]:.4g}"
                     for n in pic.snapshots)
    sections.append(("iterations", "5. Task: what happens when you alter the number of iterations?", (
        f"<p>The workshop runs 10 iterations. Here is the fitted line after {', '.join(map(str, pic.snapshots))} "
        f"iterations at its eta = {ln.data.eta:g}, beside the Normal Equation's (left), and the MSE of whole runs "
        f"at four learning rates (right; both axes logarithmic, so that the first ten iterations take as much "
        f"room as the last nine hundred; iteration 0, MSE {ws_run.trajectory.loss[0]:.4g}, is off the log axis). "
        f"The MSE at eta = {ln.data.eta:g} after each count — {snap} — against the minimum "
        f"{ln.closed.loss:.4g}.</p>"
        + add_png("05_iterations_in_pictures.png", plots.iterations_in_pictures_figure(pic, ln),
                  "fitted lines after 1 to 1000 iterations, and the MSE against iteration",
                  f"Left: the line after {', '.join(map(str, pic.snapshots))} iterations at eta = "
                  f"{ln.data.eta:g} and the Normal Equation's. Right: the MSE against iteration; the triangles mark "
                  f"where each run comes within {100 * pic.close_enough:g}% of the minimum.")
        + f'<div class="answer">{_esc(answers["iterations"])}</div>'
        + f"<p>How fast, exactly: at a constant step eta each iteration multiplies the gap (MSE minus its "
          f"minimum) by at most r², with r = max |1 − eta λ| over the eigenvalues λ of the Hessian. On a log "
          f"scale the gap falls along a straight line (solid: measured; dashed: predicted). The prediction is a "
          f"guarantee for the slowest direction, so measured runs are never above it. At the best step "
          f"r = (κ − 1)/(κ + 1) = {curv.best_rate:.4f} with the condition number κ = L/mu = "
          f"{curv.condition_number:.2f}: the more elongated the valley, the more iterations it takes.</p>"
        + add_png("05_iterations.png", plots.iterations_figure(it, ln), "loss gap against iteration",
                  "Gap to the minimum against iteration (log scale), measured and predicted."))))

    sections.append(("optimizers", "6. The error surface and four optimizers", _optimizers_text(ws, add_png)))
    sections.append(("comparison", "7. The same answer, four ways", _comparison_section(ws)))
    sections.append(("scaling", "8. Scaling: the same data raw and standardised", _scaling_text(ws, add_png)))

    sections.append(("animation", "9. The descent, animated", (
        "<p>The 10 iterations of section 3 once more, one frame per iteration: the line swinging towards the "
        "data (left; the y axis reaches below the workshop's 8 so that the first lines show) and the weights "
        "walking down the error surface (right, centred on the minimum). The file <code>descent.gif</code> beside "
        "this page can go straight into slides.</p>" + gif_html)))
    if ws.no_closed_form is not None:
        sections.append(("no-closed-form", "10. When there is no closed form: logistic regression",
                         _no_closed_form_text(ws, add_png)))
    if ws.eigen is not None:
        sections.append(("eigen-directions", "11. Eigen-directions: why the step and the conditioning matter",
                         _eigen_text(ws, add_png)))
    if ws.noise is not None:
        sections.append(("stochastic-noise", "12. Stochastic gradient descent: the noise of a mini-batch",
                         _noise_text(ws, add_png)))
    return sections


def write_workshop_report(ws: Workshop, out_dir: Any = "gdlab-report", *, gif: bool = True, dpi: int = 110
                          ) -> Report:
    """Write the workshop's report (index.html, PNGs and descent.gif) to ``out_dir``.

    Parameters
    ----------
    ws : the output of :func:`gdlab.workshop.run_workshop`.
    out_dir : the report folder; replaced if it holds an earlier gdlab report, refused if it holds other files.
    gif : write the animated GIF (a couple of seconds).
    dpi : the resolution of the figures, in dots per inch (110: about 1000 pixels wide; 200 or more for slides
        and print). The page shows them at the same size whatever their resolution.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        When the folder cannot be written (the message says why and what to do); nothing is left behind.
    """
    from gdlab import plots

    dpi = _check_dpi(dpi)
    out = Path(out_dir)
    files: list[str] = []
    with report_folder(out) as tmp:
        def add_png(name: str, fig: Any, alt: str, caption: str) -> str:
            png = plots.figure_png(fig, dpi=dpi)
            fig.clear()
            (tmp / name).write_bytes(png)
            files.append(name)
            return _figure_html(png, alt, caption, width=_css_width(fig))

        gif_html = ""
        if gif:
            plots.descent_animation(ws.line, tmp / "descent.gif", dpi=round(dpi * 100 / 110))
            files.append("descent.gif")
            gif_html = (f'<figure><img src="{_data_uri((tmp / "descent.gif").read_bytes(), "image/gif")}" '
                        'alt="animated gradient descent" width="720"><figcaption>Gradient descent, one frame per iteration.'
                        "</figcaption></figure>")
        sections = _workshop_sections(ws, add_png, gif_html)
        page = render_html("Introduction to Gradient Descent — the workshop, answered",
                           "Every figure of the workshop, reproduced with <b>gdlab</b> on its own data, and its "
                           "tasks answered with the numbers.", sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        files.append("index.html")
    return Report(folder=out, index=out / "index.html", files=files)


# ---- the report of one fit --------------------------------------------------------------------------------------

def _fit_banner(result: Result, advice: str | None) -> str:
    """The red banner of a fit that diverged or did not reach the optimum (closing the subtitle's paragraph), with
    ``advice``: what would fix it, in the caller's terms; "" for a fit that converged."""
    if not (result.diverged or not result.converged):
        return ""
    what = "diverged" if result.diverged else "did not reach the optimum"
    how = result.extra.get("summary", result.message) if not result.diverged else result.message
    return (f'</p><div class="banner" role="alert">This fit {what}: {_esc(how)}.'
            + (f" {_esc(advice)}" if advice else "") + "</div><p>")


def write_fit_report(result: Result, out_dir: Any, *, X: Any = None, y: Any = None,
                     feature_names: list[str] | None = None, target_name: str = "y", data_name: str = "",
                     advice: str | None = None, dpi: int = 110) -> Report:
    """Write the report of one fit: its summary, coefficients, the loss curve and (one feature) the fitted line.

    A fit that did not reach the optimum (or diverged) gets a banner at the top that says so, how far it is, and
    ``advice``: what would fix it, in the caller's terms (the CLI passes its flags). ``dpi``: the figures'
    resolution, as for :func:`write_workshop_report`."""
    from gdlab import plots

    dpi = _check_dpi(dpi)
    out = Path(out_dir)
    files: list[str] = []
    coef = np.ravel(result.coef)
    names = feature_names or [f"x{j}" for j in range(coef.size)]
    with report_folder(out) as tmp:
        def add_png(name: str, fig: Any, alt: str, caption: str) -> str:
            png = plots.figure_png(fig, dpi=dpi)
            (tmp / name).write_bytes(png)
            files.append(name)
            return _figure_html(png, alt, caption, width=_css_width(fig))

        curv = result.curvature
        facts = [("method", result.method), ("status", result.extra.get("summary", result.message)),
                 ("loss (MSE)", f"{result.loss:.6g}"), ("iterations", result.n_iter), ("converged", result.converged),
                 ("source", f"{result.source} ({result.source_reason})"),
                 ("features", "standardized for the descent (reported in the original units)"
                  if result.scaling == "standardize" else "raw")]
        if curv is not None:
            from gdlab.descent import format_distinct

            where = " (standardized)" if result.scaling == "standardize" else ""
            two_l, best = format_distinct(curv.stable_step, curv.best_step, digits=6)
            facts += [(f"stable bound 2/L{where}", two_l), (f"best step 2/(L+mu){where}", best),
                      (f"condition number L/mu{where}", f"{curv.condition_number:.6g}")]
        if result.gap is not None:
            facts.append(("gap to the minimum", f"{result.gap:.3g}"))
        fact_rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts)
        coef_rows = f"<tr><td>intercept</td><td>{float(np.ravel(result.intercept)[0]):.8g}</td></tr>" + "".join(
            f"<tr><td>{_esc(n)}</td><td>{c:.8g}</td></tr>" for n, c in zip(names, coef))
        sections = [("summary", "Summary", f'<table class="facts">{fact_rows}</table>'),
                    ("coefficients", "Coefficients",
                     f"<table><thead><tr><th>term</th><th>value</th></tr></thead>{coef_rows}</table>")]
        if result.trajectory is not None and len(result.trajectory) > 1:
            sections.append(("loss", "Loss against iteration", add_png(
                "loss.png", plots.loss_curve_figure(result), "loss curve",
                "The loss (or its gap to the minimum) at each recorded iteration, log scale.")))
        if X is not None and y is not None and coef.size == 1:
            sections.append(("fit", "The fitted line", add_png(
                "fit.png", plots.fit_line_figure(X, y, result, names[0], target_name), "data and fitted line",
                "The data and the fitted line.")))
        subtitle = f"target <code>{_esc(target_name)}</code>, {coef.size} feature(s)" + _fit_banner(result, advice)
        page = render_html(f"gdlab fit: {data_name or 'report'}", subtitle, sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        files.append("index.html")
    return Report(folder=out, index=out / "index.html", files=files)


def _gap_words(f: float, optimum: float) -> str:
    """The gap F - F* in words: a number, or 'at the minimum to rounding' when it is within 64 ulps of F* (the
    Newton certificate's own floor), where its digits are rounding, not distance."""
    gap = f - optimum
    floor = 64 * np.finfo(float).eps * max(abs(optimum), abs(f))
    if abs(gap) <= floor:
        return f"{gap:.2g}: at the minimum to rounding (within 64 ulps of {optimum:.10g})"
    return f"{gap:.3g}"


def write_classifier_report(result: Result, out_dir: Any, *, X: Any, codes: Any, class_names: list[str],
                            scheme: str, classify: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
                            reference: Result | None = None, reference_note: str = "",
                            feature_names: list[str] | None = None, target_name: str = "y", data_name: str = "",
                            objective: str = "objective", advice: str | None = None, dpi: int = 110) -> Report:
    """Write the report of one classifier's fit (``gdlab fit --loss log_loss --report``).

    Sections: the summary (the convergence claim, and the gap to ``reference``'s objective, Newton's minimum, when
    given; ``reference_note`` says why there is none otherwise), the objective against iteration, the confusion
    matrix and accuracy on the data fitted, the coefficients per class, and, for two features, the decision boundary
    with the class probabilities behind it. A fit that did not reach the optimum gets the banner of
    :func:`write_fit_report` with ``advice``.

    Parameters
    ----------
    result : the fit (gdlab.descend) of X against the encoded classes.
    X : (m, d) the features fitted; codes : (m,) each row's class index into ``class_names``.
    scheme : "binary" (coef (d,), class 1 where eta > 0), "multinomial" or "one-vs-rest" (coef (d, K)).
    classify : the linear predictor eta ((n,) or (n, K)) -> (class index (n,), probabilities (n, K) or None).
    """
    from gdlab import fit_plots, plots

    dpi = _check_dpi(dpi)
    out = Path(out_dir)
    X = np.asarray(X, dtype=float)
    codes = np.asarray(codes, dtype=np.int64)
    k = len(class_names)
    d = X.shape[1]
    names = feature_names or [f"x{j}" for j in range(d)]
    coef = np.asarray(result.coef, dtype=float).reshape(d, -1)
    intercept = np.atleast_1d(np.asarray(result.intercept, dtype=float))

    def eta_of(points: np.ndarray) -> np.ndarray:
        eta = points @ coef + intercept
        return eta[:, 0] if scheme == "binary" else eta

    predicted, _ = classify(eta_of(X))
    matrix = fit_plots.confusion_matrix(codes, predicted, k)
    m, correct = int(matrix.sum()), int(np.trace(matrix))
    accuracy = correct / m
    optimum = None if reference is None else float(reference.loss)
    files: list[str] = []
    with report_folder(out) as tmp:
        def add_png(name: str, fig: Any, alt: str, caption: str) -> str:
            png = plots.figure_png(fig, dpi=dpi)
            (tmp / name).write_bytes(png)
            files.append(name)
            return _figure_html(png, alt, caption, width=_css_width(fig))

        headers = [f"{class_names[1]} (vs {class_names[0]})"] if scheme == "binary" else list(class_names)
        status = "diverged" if result.diverged else ("yes" if result.converged else "no")
        facts = [("method", result.method), ("status", result.extra.get("summary", result.message)),
                 ("classes", f"{k} ({', '.join(class_names)}), {scheme}"),
                 (objective, f"{result.loss:.10g}"), ("iterations", result.n_iter),
                 ("converged", f"{status}: {result.message}" if result.converged else status)]
        if optimum is not None:
            facts += [("minimum (Newton's method)", f"{optimum:.10g} ({reference.message})"),
                      ("gap to the minimum", _gap_words(result.loss, optimum))]
        else:
            facts.append(("gap to the minimum", f"not computed: {reference_note}" if reference_note else "–"))
        facts += [("accuracy (the data fitted)", f"{accuracy:.4f} ({correct:,} of {m:,} rows)"),
                  ("source", f"{result.source} ({result.source_reason})"),
                  ("features", "standardized for the descent (reported in the original units)"
                   if result.scaling == "standardize" else "raw")]
        fact_rows = "".join(f"<tr><th>{_esc(a)}</th><td>{_esc(b)}</td></tr>" for a, b in facts)
        sections = [("summary", "Summary", f'<div class="scroll"><table class="facts">{fact_rows}</table></div>')]

        tr = result.trajectory
        if tr is not None and len(tr) > 1:
            loss = np.asarray(tr.loss, dtype=float)
            if optimum is not None:
                first, last = float(loss[0] - optimum), float(loss[-1] - optimum)
                caption = (f"The {_esc(objective)} minus its minimum {optimum:.10g} (Newton's method), at each "
                           f"recorded iteration: the gap went from {first:.3g} at iteration {int(tr.iteration[0])} "
                           f"to {_esc(_gap_words(float(loss[-1]), optimum)) if last > 0 else _esc(f'{last:.2g}')} "
                           f"at iteration {int(tr.iteration[-1])} (log scale; gaps at or below 0 are not drawn).")
            else:
                caption = (f"The {_esc(objective)} at each recorded iteration: {float(loss[0]):.6g} at iteration "
                           f"{int(tr.iteration[0])}, {float(loss[-1]):.6g} at iteration {int(tr.iteration[-1])}. "
                           f"No minimum to measure the gap against: {_esc(reference_note or 'none given')}.")
            sections.append(("objective", "Objective against iteration", add_png(
                "objective.png", fit_plots.objective_figure(result, optimum, objective), "objective against "
                "iteration", caption)))

        off = matrix.copy()
        np.fill_diagonal(off, 0)
        if off.any():
            i, j = np.unravel_index(int(np.argmax(off)), off.shape)
            mistake = (f" The most frequent mistake: {int(off[i, j]):,} row{'s' if off[i, j] != 1 else ''} of "
                       f"class {_esc(class_names[i])} predicted as {_esc(class_names[j])}.")
        else:
            mistake = " No row is misclassified."
        per_class = "; ".join(f"{_esc(c)}: {int(matrix[c_i, c_i]):,} of {int(matrix[c_i].sum()):,}"
                              for c_i, c in enumerate(class_names))
        conf_text = (f"<p>On the data fitted, {correct:,} of {m:,} rows are classified right: accuracy "
                     f"<b>{accuracy:.4f}</b> (per class, right of the class's rows: {per_class}).{mistake} This is "
                     "the accuracy on the rows the model was fitted to, not on new data.</p>")
        sections.append(("confusion", "Confusion matrix (the data fitted)", conf_text + add_png(
            "confusion.png", fit_plots.confusion_figure(matrix, list(class_names)), "confusion matrix",
            "Rows: the true class; columns: the class predicted. Each cell: the count and its share of the true "
            "class's rows.")))

        head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
        body = "<tr><td>intercept</td>" + "".join(f"<td>{v:.8g}</td>" for v in intercept) + "</tr>" + "".join(
            f"<tr><td>{_esc(n)}</td>" + "".join(f"<td>{v:.8g}</td>" for v in row) + "</tr>"
            for n, row in zip(names, coef))
        how = {"binary": f"eta = intercept + sum of coefficient x feature; the class is {_esc(class_names[1])} "
                         f"where eta &gt; 0, else {_esc(class_names[0])}.",
               "multinomial": "one column per class: eta_c = intercept_c + sum of coefficient_c x feature; the "
                              "class is the one with the largest eta_c (softmax probabilities).",
               "one-vs-rest": "one binary model per class (that class against the others); the class is the one "
                              "with the largest eta_c."}[scheme]
        sections.append(("coefficients", "Coefficients per class",
                         f"<p>In the original units of the features: {how}</p><div class=\"scroll\"><table><thead>"
                         f"<tr><th>term</th>{head}</tr></thead><tbody>{body}</tbody></table></div>"))

        if d == 2:
            def classify_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
                return classify(eta_of(points))

            _, proba = classify(eta_of(X[:1]))
            shade = ("the probability the model gives the second class" if proba is not None and k == 2 else
                     "the predicted class, paler where its probability is lower" if proba is not None else
                     "the predicted class (this loss gives no probabilities)")
            wrong = m - correct
            caption = (f"The {m:,} rows over {_esc(names[0])} and {_esc(names[1])}, coloured by their true class; the "
                       f"shading is {shade}, and the black line is where the predicted class changes. {wrong:,} "
                       f"row{'s lie' if wrong != 1 else ' lies'} on the wrong side of it.")
            sections.append(("boundary", "Decision boundary", add_png(
                "boundary.png", fit_plots.decision_boundary_figure(X, codes, list(class_names), names,
                                                                   classify_points),
                "decision boundary over the two features", caption)))

        subtitle = (f"target <code>{_esc(target_name)}</code> ({k} classes), {d} feature(s)"
                    + _fit_banner(result, advice))
        page = render_html(f"gdlab fit: {data_name or 'report'}", subtitle, sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        files.append("index.html")
    return Report(folder=out, index=out / "index.html", files=files)
