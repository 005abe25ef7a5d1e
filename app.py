"""The studio's entry point for Hugging Face Spaces and ``python app.py [options]``; the app lives in studio/app.py."""

from studio.app import demo, main  # noqa: F401 - `demo` at module level is what `gradio app.py` reloads

if __name__ == "__main__":
    main()
