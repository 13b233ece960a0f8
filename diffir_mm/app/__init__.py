"""``diffir-app``: DiffIR in a web page (Gradio), on the same Restorer as ``diffir-restore``.

* :mod:`.launch` -- the command (``--host``, ``--port``, ``--share``, models);
* :mod:`.models` -- the models offered (launch options, ``make demo``'s, uploads) and their cache;
* :mod:`.service` -- one restoration: checks, restore, the PNG (byte-identical to the CLI's);
* :mod:`.ui` -- the page;
* :mod:`.offline` -- Gradio without telemetry or CDN assets.

Gradio is an optional dependency (``pip install "diffir-mm[app]"``); only :mod:`.ui` and
:mod:`.offline` import it.
"""
