"""What stops a run (one line, an exit code) and why a single image failed.

A failed row's ``reason`` starts with its kind: ``'undecodable: ...'`` (the file was read but
does not decode: a rerun skips it unless ``--retry-failed``) or ``'transient: ...'`` (anything
that can go away: a missing file, out of memory, a failed batch; a rerun retries it). Rows
without a known prefix count as transient. The second field names the cause, by which
:func:`summarize_failures` groups them.
"""
from collections import Counter
from typing import Dict, Iterable, Optional

TRANSIENT = 'transient'
UNDECODABLE = 'undecodable'
_HINTS = {
    'missing file': 'check the source list and --data-root (relative paths are resolved '
                    "against it; default: the list file's folder)",
    'unreadable file': 'check the files\' permissions and the filesystem',
    'generation failed': 'see the error above (out of memory: lower --batch-size or '
                         '--max-pipeline-batch)',
    'undecodable image': 'the files are not images OpenCV can decode (replace them and rerun '
                         'with --retry-failed)',
    'write failed': 'check the free space and permissions of --out-dir',
}


class UsageError(ValueError):
    """A bad argument or a bad place to write: fix the command line (exit code 2)."""

    exit_code = 2


class SettingsMismatch(UsageError):
    """``--out-dir`` holds views made with other settings (exit code 2)."""


class ShardLocked(RuntimeError):
    """Another live process writes the same shard (exit code 1)."""

    exit_code = 1


class SetupError(RuntimeError):
    """The pipeline or the PCA file cannot be loaded, or the disk is full (exit code 1)."""

    exit_code = 1


ABORTS = (UsageError, ShardLocked, SetupError)


def failure_reason(kind: str, cause: str, exc: BaseException) -> str:
    """``'<kind>: <cause>: <ExceptionType>: <message>'`` for a manifest row."""
    if kind not in (TRANSIENT, UNDECODABLE):
        raise ValueError(f'failure kind must be {TRANSIENT!r} or {UNDECODABLE!r}, got {kind!r}')
    return f'{kind}: {cause}: {type(exc).__name__}: {exc}'


def failure_kind(reason: Optional[str]) -> str:
    """The kind a reason starts with; reasons without a known prefix are transient."""
    head = (reason or '').split(':', 1)[0].strip()
    return UNDECODABLE if head == UNDECODABLE else TRANSIENT


def should_retry(reason: Optional[str], retry_failed: bool = False) -> bool:
    """Whether a rerun tries a failed image again: transient always, undecodable on request."""
    return retry_failed or failure_kind(reason) == TRANSIENT


def failure_cause(reason: Optional[str]) -> str:
    """The group a reason belongs to: ``'<kind>: <cause>'`` (the first field of an old one)."""
    fields = [f.strip() for f in (reason or 'unknown').split(':')]
    if fields[0] in (TRANSIENT, UNDECODABLE) and len(fields) > 1:
        return f'{fields[0]}: {fields[1]}'
    return fields[0] or 'unknown'


def summarize_failures(reasons: Iterable[str], attempted: int,
                       max_fraction: float = 0.5) -> Optional[str]:
    """A message when ``len(reasons) / attempted >= max_fraction``, else None.

    Args:
        reasons (Iterable[str]): one reason per image that failed in this run.
        attempted (int): images this run tried.
        max_fraction (float): failure share that makes the run fail. Defaults to 0.5.

    Returns:
        str | None: the counts, the most common cause with one example and a hint.
    """
    reasons = list(reasons)
    if attempted <= 0 or not reasons or len(reasons) / attempted < max_fraction:
        return None
    groups: Dict[str, list] = {}
    for reason in reasons:
        groups.setdefault(failure_cause(reason), []).append(reason)
    counts = Counter({cause: len(rs) for cause, rs in groups.items()})
    cause, count = counts.most_common(1)[0]
    hint = _HINTS.get(cause.split(': ', 1)[-1], 'see the reasons in the shard records')
    lines = [f'{len(reasons)} of {attempted} images failed '
             f'({100 * len(reasons) / attempted:.0f}% >= {100 * max_fraction:.0f}%).',
             f'Most common cause: {cause} ({count} images), e.g. {groups[cause][0]}',
             f'Fix: {hint}. A rerun retries transient failures.']
    lines += [f'  {n} x {c}' for c, n in counts.most_common()[1:5]]
    return '\n'.join(lines)
