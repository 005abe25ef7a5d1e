"""seqgen studio: explore corpora, train, run the loss × optimizer study, generate melodies and lyrics.

    seqgen studio [--host 127.0.0.1] [--port 7860] [--share] [--max-file-size 50mb] [--auth user:password]

``python app.py`` (what a Space runs) and ``python -m studio`` take the same
options; ``GRADIO_SERVER_NAME``, ``GRADIO_SERVER_PORT`` and ``SEQGEN_AUTH``
set the defaults of ``--host``, ``--port`` and ``--auth``.  The layout and
the wiring live here and in ``studio/`` (one module per tab, and
:mod:`studio.api` for the typed endpoints); everything they do is a call into
``seqgen``.  Dropdowns get their choices when the page is built; the server
imports neither TensorFlow nor music21 and parses no corpus: melodies and
verses are made in worker processes (:mod:`studio.pool`), which load the
default models while the server starts.

Bundles come only from ``checkpoints/`` (``$SEQGEN_CHECKPOINTS``) and from
the studio's own training output (:func:`studio.common.studio_dir`: on
persistent storage when there is some); a model file cannot be uploaded.
The server serves only the files its handlers return and its cached examples:
``allowed_paths`` stays empty.  Gradio copies returned files into its cache
(cleaned by ``delete_cache``), except the generated melodies' folders
(:func:`studio.common.served_root`), which it serves where they are.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import signal
import tempfile
import time
from pathlib import Path

import gradio as gr

from studio import api, common, explore, lyrics, melody, models, pool, study, train
from studio.options import credentials, parse_args

TITLE = "seqgen studio"
CSS = """
.seqgen-sheet svg { width: 100%; height: auto; }
/* Narrow margins on a phone (8 px at 390 px, Gradio's 32 px from 1000 px), so figures get the screen's width.
   Not in a media query: Gradio scopes those to the page's content, and this margin is outside it. */
.gradio-container .main.fillable { padding-left: clamp(8px, 4vw - 8px, 32px); padding-right: clamp(8px, 4vw - 8px, 32px); }
@media (max-width: 640px) {  /* a phone: plotly's toolbar would cover the figures' titles */
  .js-plotly-plot .modebar-container { display: none; }
}
"""
HEADER = f"""# {TITLE}
**Play**: hear a melody or complete a verse with one click. Then learn how it works, step by step:
**Explore** a corpus → **Train** a model → **Study** losses and optimizers. **Models** says what each model learned.
"""
# Examples are cached lazily, on their first click, in a folder of this server process: never stale after an update.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(Path(tempfile.gettempdir()) / f"seqgen-examples-{os.getpid()}-{int(time.time())}"))
# After every event Gradio rebuilds the summary its /monitoring page shows, a pandas table of up to 10,000 past
# events: 4 ms of server CPU per call at first, 21 ms once a class has made 10,000 calls.  Every 1,000 events is plenty.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")


# The modules whose functions the tabs send to the generation workers (melody, verse, describe, step, cells): each
# worker imports them (and so Gradio) at start, not when a class's first requests arrive.
WORKER_MODULES = ("studio.melody", "studio.lyrics", "studio.api", "studio.step", "studio.insight")


def refresh_play(melody_bundle=None, lyrics_bundle=None):
    """The Play tab's model lists and their notices, with the models on disk now (keeping the chosen ones)."""
    return (*melody.refresh(melody_bundle), *lyrics.refresh(lyrics_bundle))


def build_demo() -> gr.Blocks:
    """The studio's Blocks: Play (melody and verse) first, then the lessons, each opening with a few sentences for students."""
    # Gradio prints a line for each lazily cached set of examples; the studio says it once, and keeps anything else.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        demo = _build_blocks()
    for line in printed.getvalue().replace("at first use.", "at first use.\n").splitlines():
        if line.strip() and not line.startswith("Will cache examples in"):
            print(line)
    print(f"Examples are cached at their first use in {os.environ['GRADIO_EXAMPLES_CACHE']}")
    return demo


def _build_blocks() -> gr.Blocks:
    gr.set_static_paths([common.served_root()])
    with gr.Blocks(title=TITLE, delete_cache=common.DELETE_CACHE, analytics_enabled=False) as demo:
        gr.Markdown(HEADER)
        with gr.Tabs(selected="play", overflow_behavior="wrap"):  # every tab stays in sight on a phone
            with gr.Tab("Play", id="play") as play_tab:
                with gr.Row(equal_height=False):  # side by side on a laptop, melody above verse on a phone
                    with gr.Column(scale=3, min_width=340):
                        melodic = melody.build()
                    with gr.Column(scale=2, min_width=340):
                        lyrical = lyrics.build()
            with gr.Tab("Explore", id="explore"):
                explore.build()
            with gr.Tab("Train", id="train"):
                trained = train.build()
            with gr.Tab("Study", id="study"):
                study.build()
            with gr.Tab("Models", id="models") as models_tab:
                listed = models.build()
        api.build()  # typed endpoints for scripts: /melody and /lyrics

        # New bundles appear without a restart: lists refresh when a tab opens and after training.
        melody_outputs = [melodic["bundle"], melodic["notice"]]
        lyrics_outputs = [lyrical["bundle"], lyrical["notice"]]
        play_lists = melody_outputs + lyrics_outputs
        play_tab.select(refresh_play, [melodic["bundle"], lyrical["bundle"]], play_lists, api_visibility="private", queue=False)
        # Opening the page refreshes the lists too; it is also the session's first event, so Gradio builds the
        # session's state (a config for each of the page's ~300 blocks, about 40 ms of server CPU) while the page
        # opens, not when a class presses Generate.  Undocumented: bench/load.py's students open the page with it.
        demo.load(refresh_play, None, play_lists, api_name="open_page", api_visibility="undocumented", queue=False)
        models_tab.select(models.refresh, listed["bundle"], listed["bundle"], api_visibility="private", queue=False).then(
            listed["show"], listed["bundle"], listed["outputs"], api_visibility="private")
        trained["event"].then(melody.refresh, melodic["bundle"], melody_outputs, api_visibility="private").then(
            lyrics.refresh, lyrical["bundle"], lyrics_outputs, api_visibility="private").then(
            models.refresh, listed["bundle"], listed["bundle"], api_visibility="private")
    # Exploring and training each have their own concurrency group (see the tabs); everything else runs up to
    # four at a time.  Melodies and verses go straight to the generation workers, which turn requests away
    # with "the class queue is full" past the same size (studio.pool); a full Gradio queue turns the rest away
    # at once (the page says the application is busy and to try again) instead of letting a class wait minutes.
    demo.queue(default_concurrency_limit=4, max_size=common.queue_size())
    return demo


demo = build_demo()


def main(args: argparse.Namespace | None = None) -> None:
    """Launch the studio with parsed options (:func:`studio.options.parse_args`; default: this process's arguments)."""
    args = args or parse_args()
    max_file_size = int(args.max_file_size) if str(args.max_file_size).isdigit() else args.max_file_size
    auth = credentials(args.auth)
    common.use_persistent_storage()  # before the workers start: they inherit its settings
    pool.start(preload=WORKER_MODULES)  # the generation workers load the default models while the server starts
    demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size=max_file_size, auth=auth,
        allowed_paths=[],  # serve nothing but the files handlers return (copied into Gradio's cache)
        show_error=True, css=CSS, prevent_thread_lock=True,
    )
    # The page, Gradio and the server are built and live as long as the process: frozen, a full collection no longer
    # walks them (over 100 ms with the GIL held, a stall for every student, set off by any request's garbage).
    gc.freeze()
    signal.signal(signal.SIGTERM, _interrupt)  # a stop (a Space restarting, systemd, kill) closes like Ctrl-C
    try:
        demo.block_thread()  # until Ctrl-C (or SIGTERM): then Gradio closes the server
    finally:
        pool.shutdown()  # the workers end and their queues are released: no leaked semaphores


def _interrupt(signum, frame):
    raise KeyboardInterrupt
