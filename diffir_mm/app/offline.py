"""Gradio without the network: no telemetry, no version check, no fonts or scripts from CDNs.

What Gradio (5.14) would otherwise reach out to, and how each is turned off:

* ``GRADIO_ANALYTICS_ENABLED`` (read when ``gradio`` is imported and when ``Blocks`` are built)
  gates the usage telemetry to ``api.gradio.app``, the PyPI version check on start-up and the
  thread that downloads updated UI strings at import time: :func:`import_gradio` sets it to
  ``False`` before the first import;
* the default theme loads its text font from Google Fonts: :func:`offline_theme` uses the fonts
  Gradio ships (``IBM Plex Sans`` / ``IBM Plex Mono``, served by the app itself);
* the page template preconnects to Google Fonts and loads ``iframeResizer`` (only needed when
  the app is embedded in another page) from ``cdnjs.cloudflare.com``:
  :class:`StripExternalAssets` removes those tags from the HTML the server sends;
* share links (``--share``) need ``api.gradio.app`` and are off unless asked for.

The browser test (``tests/test_app/test_app_browser.py``) checks that the page requests nothing but
the app's own address.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, List

__all__ = ['import_gradio', 'offline_theme', 'StripExternalAssets']

#: ``<script src="https://...">`` and ``<link ... href="https://...">`` in an HTML page.
_EXTERNAL_TAG = re.compile(
    rb'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>'
    rb'|<link\b[^>]*\bhref="https?://[^"]*"[^>]*/?>', re.IGNORECASE)


def import_gradio() -> Any:
    """Import ``gradio`` with its telemetry and update checks off (see the module notes)."""
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    try:
        import gradio
    except ImportError as err:
        raise ImportError('diffir-app needs Gradio: pip install "diffir-mm[app]" (or '
                          "pip install -r requirements/tests.txt)") from err
    return gradio


def offline_theme() -> Any:
    """Gradio's default theme with the fonts it ships instead of Google Fonts."""
    gr = import_gradio()
    from gradio.themes.utils.fonts import LocalFont
    system = gr.themes.Font  # a name only: no stylesheet (plain strings would get @font-face)
    return gr.themes.Default(
        font=(LocalFont('IBM Plex Sans'), system('ui-sans-serif'), system('system-ui'),
              system('sans-serif')),
        font_mono=(LocalFont('IBM Plex Mono'), system('ui-monospace'), system('Consolas'),
                   system('monospace')))


class StripExternalAssets:
    """ASGI middleware: drop ``<script src>`` / ``<link href>`` tags to other hosts from HTML.

    Args:
        app: The wrapped ASGI application.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope['type'] != 'http' or scope.get('method') != 'GET':
            await self.app(scope, receive, send)
            return
        start: List[dict] = []
        body: List[bytes] = []

        async def rewrite(message: dict) -> None:
            if message['type'] == 'http.response.start':
                headers = dict(message.get('headers') or [])
                if not headers.get(b'content-type', b'').startswith(b'text/html'):
                    await send(message)
                    return
                start.append(message)
                return
            if not start:  # not an HTML response: pass through
                await send(message)
                return
            body.append(message.get('body', b''))
            if message.get('more_body'):
                return
            page = _EXTERNAL_TAG.sub(b'', b''.join(body))
            headers = [(k, v) for k, v in start[0].get('headers', [])
                       if k.lower() != b'content-length']
            headers.append((b'content-length', str(len(page)).encode()))
            await send(dict(start[0], headers=headers))
            await send({'type': 'http.response.body', 'body': page, 'more_body': False})

        await self.app(scope, receive, rewrite)
