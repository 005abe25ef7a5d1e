"""The studio's entry point for Hugging Face Spaces and ``python app.py [options]``; the app lives in studio/app.py."""

if __name__ == "__main__":
    from studio.options import parse_args

    options = parse_args()  # --help and bad options answer before Gradio is imported
    from studio.app import main

    main(options)
elif __name__ != "__mp_main__":  # a generation worker re-imports this file under that name: it needs no page
    from studio.app import demo  # noqa: F401 - `demo` at module level is what `gradio app.py` reloads
