"""diffir-app in a real headless browser (Debian chromium + chromedriver, driven by Selenium).

The server runs ``tools/app.py`` with tiny random-weight models on 127.0.0.1, under a guard that
refuses and records any connection outside the loopback; the browser uploads scikit-image's
astronaut, presses Restore, downloads the PNG and compares it with ``diffir-restore``'s file;
paints a stroke as an inpainting mask; sends files that are not images and a 40-megapixel
image, sees the messages, and restores again. :func:`test_serves_with_the_network_blocked` runs
the first test again inside a network namespace without network (``unshare -n``, root only).
"""
import io
import os
import re
import shutil
import socket
import subprocess
import time

import cv2
import numpy as np
import pytest
from helpers import (PYTHON, REPO_ROOT, browser_missing, file_bytes, free_port, requested_hosts,
                     sample_image, start_app, start_browser, stop_browser, stop_process,
                     write)

from PIL import Image

from diffir_mm.cli.restore import main as restore_cli

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))

#: Set by :func:`test_serves_with_the_network_blocked` for the run inside the namespace.
IN_NETNS = os.environ.get('DIFFIR_APP_NETNS') == '1'
SCREENSHOT = os.path.join(REPO_ROOT, 'docs', 'images', 'app.png')
#: Seconds for a page update (tiny model; a busy 2-core machine can take minutes).
WAIT = int(os.environ.get('DIFFIR_APP_TEST_WAIT', '600'))
CLICK_RETRY = 20  # seconds without a download before a download button is clicked again


@pytest.fixture(scope='module')
def server(app_ckpts, tmp_path_factory):
    """The app with the tiny deblurring and inpainting models, network connections refused."""
    folder = tmp_path_factory.mktemp('app_server')
    port = free_port()
    net_log = folder / 'blocked.txt'
    net_log.write_text('')
    proc = start_app(['--checkpoint', str(app_ckpts / 'deblur.pth'),
                      '--model', str(app_ckpts / 'inpaint.pth'),
                      '--demo-dir', str(folder / 'no_demo'), '--out-dir', str(folder / 'out'),
                      '--max-memory', '4'], port, str(folder / 'server.log'),
                     net_log=str(net_log))
    yield dict(url=f'http://127.0.0.1:{port}/', port=port, net_log=net_log,
               log=folder / 'server.log')
    stop_process(proc)
    assert net_log.read_text() == '', 'the app tried to reach the network'


@pytest.fixture(scope='module')
def page(server, tmp_path_factory):
    downloads = tmp_path_factory.mktemp('downloads')
    driver = start_browser(str(downloads))
    try:
        yield Page(driver, server['url'], downloads)
    finally:
        stop_browser(driver)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('app_photos')
    return {'astronaut': write(folder / 'astronaut.png',
                               sample_image('astronaut', 256)[..., ::-1]),
            'chelsea': write(folder / 'chelsea.png', sample_image('chelsea', 96)[..., ::-1])}


class Page:
    """The app's page in the browser, with explicit waits."""

    def __init__(self, driver, url, downloads):
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver, self.url, self.downloads, self.by = driver, url, downloads, By
        # the page re-renders while it updates: an element found a moment ago may be gone
        self.wait = WebDriverWait(driver, WAIT, poll_frequency=0.2,
                                  ignored_exceptions=(StaleElementReferenceException,))
        driver.get(url)
        self.find('#restore')

    def find(self, css):
        from selenium.webdriver.support import expected_conditions as ec
        return self.wait.until(ec.presence_of_element_located((self.by.CSS_SELECTOR, css)))

    def visible(self, css):
        from selenium.webdriver.support import expected_conditions as ec
        return self.wait.until(ec.visibility_of_element_located((self.by.CSS_SELECTOR, css)))

    def choose_model(self, label):
        if self.find('#model input').get_attribute('value') == label:
            return  # already chosen: choosing it again changes nothing the page shows
        self.find('#model input').click()
        self.visible(f'li[data-testid="dropdown-option"][aria-label="{label}"]').click()
        self.wait.until(lambda d: label in self.find('#status').text)

    def upload(self, elem_id, path):
        """Upload ``path`` and wait until the page shows it (from the server)."""
        self.find(f'#{elem_id} input[type=file]').send_keys(str(path))
        name = os.path.basename(path)
        self.wait.until(lambda d: any(name in (img.get_attribute('src') or '') for img in
                                      d.find_elements(self.by.CSS_SELECTOR, f'#{elem_id} img')))

    def clear_image(self):
        """Remove the image shown, if any, and wait until it is gone (a native click on the
        remove button was seen to do nothing after the before/after slider was dragged)."""
        for button in self.driver.find_elements(self.by.CSS_SELECTOR,
                                                '#image button[aria-label="Remove Image"]'):
            self.driver.execute_script('arguments[0].click()', button)
        self.wait.until(lambda d: not d.find_elements(self.by.CSS_SELECTOR, '#image img'))
        self.find('#image input[type=file]')

    def restore(self, progress=None):
        """Press Restore; returns the status text, or raises with the error message shown.

        A ``MutationObserver``, installed before the press, records what the page shows on
        every change: that the previous result's download button was hidden (the press does
        that first) and the progress texts. Polling missed both when a small image restored
        between two polls on an idle machine (the wait for the hidden button then hung).

        Args:
            progress: A list that collects the progress texts shown meanwhile.
        """
        self.dismiss_errors()
        self.driver.execute_script(
            "window.diffirProgress = []; window.diffirHidden = false;"
            "const look = () => {"
            "  document.querySelectorAll('[class*=progress]').forEach("
            "    e => window.diffirProgress.push(e.innerText));"
            "  const button = document.getElementById('download');"
            "  if (!button || button.offsetParent === null) window.diffirHidden = true;"
            "};"
            "window.diffirObserver = new MutationObserver(look);"
            "window.diffirObserver.observe(document.body, {childList: true, subtree: true,"
            "  characterData: true, attributes: true});")
        # one of two buttons is shown: inpainting models' (it sends the mask editor) or the other
        self.wait.until(lambda d: [b for b in d.find_elements(
            self.by.CSS_SELECTOR, '#restore, #restore-inpaint') if b.is_displayed()])[0].click()
        self.wait.until(lambda d: d.execute_script('return window.diffirHidden'))
        self.wait.until(lambda d: self.errors() or
                        d.find_element(self.by.ID, 'download').is_displayed())
        seen = self.driver.execute_script(
            "window.diffirObserver.disconnect(); return window.diffirProgress;")
        if progress is not None:
            progress.extend(seen)
        if self.errors():
            raise RuntimeError(' | '.join(self.errors()))
        return self.find('#status').text

    def errors(self):
        """The error messages shown (read in one script: toasts come and go)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.toast-body.error .toast-text'))"
            ".map(e => e.innerText.trim()).filter(t => t)")

    def dismiss_errors(self):
        self.driver.execute_script(
            "document.querySelectorAll('.toast-body .toast-close').forEach(b => b.click())")
        self.wait.until(lambda d: not self.errors())

    def download(self, elem_id, keep_dir):
        """Click a download button; returns the file, moved to ``keep_dir`` once written.

        Without a download after :data:`CLICK_RETRY` seconds the button is clicked again,
        through the DOM (a safety net for a click that lands beside a button the page moved).
        A second download of the same file is dropped.
        """
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def done(driver):
            return sorted((n for n in os.listdir(self.downloads) if not n.endswith('.crdownload')),
                          key=lambda n: os.path.getmtime(self.downloads / n))

        deadline = time.monotonic() + WAIT
        native = True
        while True:
            button = self.visible(f'#{elem_id}')
            self.driver.execute_script('arguments[0].scrollIntoView({block: "center"})', button)
            self.wait.until(lambda d: button.is_enabled() and button.size['height'] > 0)
            if native:
                button.click()
            else:
                self.driver.execute_script('arguments[0].click()', button)
            native = False
            try:
                names = WebDriverWait(self.driver, CLICK_RETRY, poll_frequency=0.2).until(done)
                break
            except TimeoutException:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.5)  # a second click's download, if any, lands now and is dropped
        names = done(self.driver)
        os.makedirs(keep_dir, exist_ok=True)
        kept = shutil.move(self.downloads / names[0], keep_dir / names[0])
        WebDriverWait(self.driver, 10, poll_frequency=0.2).until(
            lambda d: not any(n.endswith('.crdownload') for n in os.listdir(self.downloads)))
        for name in os.listdir(self.downloads):
            os.remove(self.downloads / name)
        return kept

    def paint_stroke(self, size, dx0, dx1, dy):
        """Draw a brush stroke on the mask editor from (dx0, dy) to (dx1, dy), in CSS pixels
        from the canvas centre, once the editor shows an image of ``size`` (W, H) pixels (drawn
        at that size); returns the canvas element."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        def showing(driver):
            found = driver.find_elements(self.by.CSS_SELECTOR, '#mask-editor canvas')
            shown = found and found[0].is_displayed() and found[0].size
            return found[0] if shown and (shown['width'], shown['height']) == size else None

        canvas = self.wait.until(showing)
        self.find('#mask-editor button[aria-label="Draw button"]').click()
        ActionChains(self.driver).send_keys(Keys.ESCAPE).perform()  # close the brush options
        stroke = ActionChains(self.driver, duration=20)
        stroke.move_to_element_with_offset(canvas, dx0, dy).click_and_hold()
        for _ in range(20):
            stroke.move_by_offset((dx1 - dx0) // 20, 0)
        stroke.release().perform()
        return canvas


def _cli_png(tmp_path, image, ckpt, *extra):
    out = tmp_path / 'cli'
    rc = restore_cli([str(image), '-o', str(out), '--checkpoint', str(ckpt), '--ext', 'png',
                      '--no-progress', '-q', *map(str, extra)])
    assert rc == 0
    return out / (os.path.splitext(os.path.basename(image))[0] + '.png')


def test_restored_download_equals_diffir_restore(page, server, photos, app_ckpts, tmp_path):
    if IN_NETNS:  # the namespace really has no network
        with pytest.raises(OSError):
            socket.create_connection(('192.0.2.1', 80), timeout=3)
    page.choose_model('deblur.pth')
    page.upload('image', photos['astronaut'])
    status = page.restore()
    assert 'Done.' in status and '256x256 -> 256x256' in status, status
    png = page.download('download', tmp_path)
    assert png.name == 'astronaut_diffir.png'
    cli = _cli_png(tmp_path, photos['astronaut'], app_ckpts / 'deblur.pth', '--seed', 0)
    assert file_bytes(png) == file_bytes(cli)
    # the before/after slider moves the cut
    slider = page.find('#compare input.diffir-slider')
    before = page.find('#compare img.diffir-before')
    assert before.value_of_css_property('clip-path') == 'inset(0px 50% 0px 0px)'
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(page.driver).click_and_hold(slider).move_by_offset(
        -slider.size['width'] // 4, 0).release().perform()
    assert before.value_of_css_property('clip-path') != 'inset(0px 50% 0px 0px)'
    assert requested_hosts(page.driver) == [f'127.0.0.1:{server["port"]}']
    if not IN_NETNS:
        page.driver.execute_script('window.scrollTo(0, 0)')
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        shot = Image.open(io.BytesIO(page.driver.get_screenshot_as_png())).convert('RGB')
        small = shot.resize((shot.width * 3 // 4, shot.height * 3 // 4), Image.LANCZOS)
        small.quantize(colors=256).save(SCREENSHOT, optimize=True)  # a small PNG for the docs


def test_painted_stroke_is_the_inpainting_mask(page, photos, app_ckpts, tmp_path):
    page.choose_model('inpaint.pth')
    page.clear_image()
    page.upload('image', photos['chelsea'])
    canvas = page.paint_stroke((96, 96), -30, 30, 10)
    page.restore()
    png, mask = page.download('download', tmp_path), page.download('download-mask', tmp_path)
    assert (png.name, mask.name) == ('chelsea_diffir.png', 'chelsea_mask.png')
    holes = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED) > 0
    before, after = cv2.imread(photos['chelsea']), cv2.imread(str(png))
    # the holes are the stroke: a band around the line 10 px below the centre, 60 px long
    scale = before.shape[1] / canvas.size['width']  # image pixels per CSS pixel
    rows, cols = np.nonzero(holes)
    assert holes.any()
    centre = np.array(before.shape[:2]) / 2
    assert abs(rows.mean() - (centre[0] + 10 * scale)) < 6 * scale
    assert abs(cols.mean() - centre[1]) < 6 * scale
    assert 40 * scale < cols.max() - cols.min() < 90 * scale
    # only the masked pixels changed
    np.testing.assert_array_equal(after[~holes], before[~holes])
    assert np.any(after != before, axis=2)[holes].mean() > 0.9
    cli = _cli_png(tmp_path, photos['chelsea'], app_ckpts / 'inpaint.pth', '--mask', mask)
    assert file_bytes(png) == file_bytes(cli)


def test_bad_uploads_are_messages_and_the_server_keeps_serving(page, photos, tmp_path):
    page.choose_model('deblur.pth')
    text = tmp_path / 'notes.txt'
    text.write_text('not an image\n')
    fake = tmp_path / 'holiday.png'
    fake.write_bytes(b'\x89PNG\r\n\x1a\n' + b'not really a PNG' * 4)
    # 40 MP as a TIFF (LZW, 0.1 MB): chromium does not draw TIFFs, and the headless software
    # renderer takes minutes over a 40 MP PNG it does draw (the service test reads a PNG)
    big = write(tmp_path / 'camera.tif', np.full((5000, 8000, 3), 90, np.uint8))
    for path, message in [(text, 'image notes.txt: cannot decode image'),
                          (fake, 'image holiday.png: cannot decode image'),
                          (big, 'the image is 8000x5000 (40.0 MP): restoring it in one piece')]:
        page.clear_image()
        page.upload('image', path)
        try:
            status = page.restore()
        except RuntimeError as err:
            shown = str(err)
        else:
            pytest.fail(f'{path.name} was restored: {status}')
        assert message in shown and 'Traceback' not in shown, shown
    assert 'set a tile size of' in shown
    # then a valid request: it runs, its progress bar counting the tiles
    page.clear_image()
    page.upload('image', photos['astronaut'])
    tile = page.find('#tile input')
    tile.clear()
    tile.send_keys('128')
    seen = []
    status = page.restore(progress=seen)
    assert 'Done.' in status and 'tile 128/32' in status, status
    assert any(re.search(r'restoring: tile \d+/9', text) for text in seen), seen


def test_an_uploaded_checkpoint_restores(page, photos, app_ckpts, tmp_path):
    """A checkpoint uploaded through the page joins the model menu, is chosen, and restores as
    ``diffir-restore --checkpoint`` does with that file."""
    mine = tmp_path / 'my_deblur.pth'
    shutil.copyfile(app_ckpts / 'deblur.pth', mine)
    page.find('#checkpoint-upload input[type=file]').send_keys(str(mine))
    page.wait.until(lambda d: 'uploaded: my_deblur.pth' in page.find('#status').text)
    assert page.find('#model input').get_attribute('value') == 'uploaded: my_deblur.pth'
    page.clear_image()
    page.upload('image', photos['chelsea'])
    tile = page.find('#tile input')  # untiled, as the CLI's default (another test set 128)
    tile.clear()
    tile.send_keys('0')
    status = page.restore()
    assert 'Done.' in status and 'no tiling' in status, status
    png = page.download('download', tmp_path)
    assert file_bytes(png) == file_bytes(_cli_png(tmp_path, photos['chelsea'], mine,
                                                  '--seed', 0))


def test_a_pasted_image_restores(page, server, photos, app_ckpts, tmp_path):
    """An image pasted from the clipboard (the image box's "Paste from clipboard") restores as
    ``diffir-restore`` restores the same pixels."""
    import base64

    page.choose_model('deblur.pth')
    page.clear_image()
    # the clipboard API wants a focused page (a headless window is not) and the permissions
    page.driver.execute_cdp_cmd('Emulation.setFocusEmulationEnabled', {'enabled': True})
    page.driver.execute_cdp_cmd('Browser.grantPermissions', {
        'origin': server['url'].rstrip('/'),
        'permissions': ['clipboardReadWrite', 'clipboardSanitizedWrite']})
    data = base64.b64encode(file_bytes(photos['chelsea'])).decode('ascii')
    copied = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
        "navigator.clipboard.write([new ClipboardItem({'image/png': new Blob([bytes],"
        "  {type: 'image/png'})})]).then(() => done('ok'), e => done(String(e)));", data)
    assert copied == 'ok', copied
    page.driver.execute_script('arguments[0].click()',
                               page.find('#image button[aria-label="Paste from clipboard"]'))
    page.wait.until(lambda d: any('clipboard' in (img.get_attribute('src') or '') for img in
                                  d.find_elements(page.by.CSS_SELECTOR, '#image img')))
    tile = page.find('#tile input')
    tile.clear()
    tile.send_keys('0')
    assert 'Done.' in page.restore()
    png = page.download('download', tmp_path)
    cli = _cli_png(tmp_path, photos['chelsea'], app_ckpts / 'deblur.pth', '--seed', 0)
    pasted, expected = cv2.imread(str(png)), cv2.imread(str(cli))
    np.testing.assert_array_equal(pasted, expected)


def test_serves_with_the_network_blocked():
    """The first test again, server and browser in a network namespace with only loopback."""
    if IN_NETNS:
        pytest.skip('already inside the namespace')
    probe = subprocess.run(['unshare', '-n', 'ip', 'link', 'set', 'lo', 'up'],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f'no network namespace here (unshare -n needs root): {probe.stderr.strip()}')
    env = dict(os.environ, DIFFIR_APP_NETNS='1')
    test = f'{os.path.abspath(__file__)}::test_restored_download_equals_diffir_restore'
    proc = subprocess.run(['unshare', '-n', 'sh', '-c',
                           f'ip link set lo up && exec "{PYTHON}" -m pytest -q -x '
                           f'-p no:cacheprovider "{test}"'],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and '1 passed' in proc.stdout, proc.stdout[-3000:]

