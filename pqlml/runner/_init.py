"""The ``init`` command: inspect the files, draft a config, run the draft on the data (the one
place a probe project is opened for it) and decide the rest from what it measured."""

from __future__ import annotations

from ..errors import PqlmlError


def init(directory, events, *, users=None, accounts=None, outcomes=None):
    """A commented ``pqlml.toml`` drafted for the files (:func:`pqlml.init.draft_config`),
    checked on the data (:func:`pqlml.init.run_draft` on a project opened from the draft
    without the feature cache: nothing is left beside the config) and finished from the
    figures (:meth:`pqlml.init.Draft.finish`). A draft the data does not open with is not
    an error: ``result.figures.problem`` says why. Returns the
    :class:`~pqlml.init.InitResult`; nothing is written (``result.write(force=...)``)."""
    from ..init import DraftFigures, draft_config, run_draft
    from ..project import open_project

    drafted = draft_config(directory, events, users=users, accounts=accounts,
                           outcomes=outcomes)
    config = drafted.config
    try:
        probe = open_project(config, cache=False)
    except PqlmlError as err:                    # a guess that does not fit the data
        figures = DraftFigures(problem=str(err))
    else:
        figures = run_draft(probe)
    return drafted.finish(figures)
