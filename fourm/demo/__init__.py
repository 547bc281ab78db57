"""The local web demo (`fourm demo`): a FlexTok tab and an any-to-any tab over one checkpoint.

Files, one job each: session.py (what is loaded), samples.py (val samples, condition files),
flextok_view.py and any_to_any.py (the work, no gradio), settings_yaml.py (settings -> a
`fourm generate` YAML), legends.py, ui_*.py (the gradio tabs), app.py (layout, launch),
micro.py (a random micro checkpoint for tests), screenshots.py (drive it in headless Chromium).
gradio and playwright are imported inside functions only.
"""
