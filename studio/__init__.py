"""The seqgen studio's user interface: one module per tab, UI only.

:mod:`studio.app` composes the tabs into one ``gr.Blocks`` and launches it
(``seqgen studio``, ``python -m studio``, or ``python app.py`` on a Space);
:mod:`studio.api` adds the typed endpoints for scripts.  Every handler here
checks its inputs, calls a :mod:`seqgen` function and formats what it
returns; the machine learning lives in :mod:`seqgen`, which never imports
gradio.  :mod:`studio.common` holds what the tabs share: folders, the list
of bundles, per-request output folders and the error wrapper.
"""
