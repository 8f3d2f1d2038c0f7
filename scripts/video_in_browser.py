#!/usr/bin/env python3
"""Open an overlay video in headless Chromium in a <video> element, seek, and screenshot it.

    python scripts/video_in_browser.py out/occ_run/overlay.webm --out /tmp/overlay_in_chromium.png

The page seeks to the middle of the video, waits for `seeked`, copies the decoded frame onto a
<canvas> and prints what the browser reports (size, duration, current time, canPlayType) under it,
so the screenshot shows whether the browser itself decoded the file. Needs a Chromium binary
(Debian: `apt-get install chromium`); exits 1 when the browser reports an error or no frame.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = """<!doctype html><html><body style="margin:0;background:#222;color:#eee;font:16px sans-serif">
<video id="v" src="{src}" muted preload="auto" style="display:none"></video>
<canvas id="c"></canvas><pre id="s" style="white-space:pre-wrap">loading {name}</pre>
<script>
const mime = {mime_json};
const v = document.getElementById('v'), c = document.getElementById('c'), s = document.getElementById('s');
v.addEventListener('error', () => {{
  s.textContent = 'VIDEO ERROR ' + (v.error && v.error.code); document.title = 'error'; }});
v.addEventListener('seeked', () => {{
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  s.textContent = 'Chromium decoded {name}: ' + v.videoWidth + 'x' + v.videoHeight + ', duration ' +
    v.duration.toFixed(2) + ' s, frame shown at ' + v.currentTime.toFixed(2) + ' s; canPlayType(' +
    mime + ') = ' + JSON.stringify(v.canPlayType(mime));
  document.title = 'done';
}});
const seek = () => {{ v.currentTime = v.duration / 2; }};
if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek);
</script></body></html>
"""
MIME = {'.webm': 'video/webm; codecs="vp8"', '.mp4': 'video/mp4'}


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-framed JSON)."""

    def __init__(self, browser: str, flags: list[str]):
        """Start the browser with the pipe open."""
        to_browser_r, self._write = os.pipe()
        self._read, from_browser_w = os.pipe()
        os.set_inheritable(to_browser_r, True)
        os.set_inheritable(from_browser_w, True)

        def wire():   # in the child: our pipe ends become its fds 3 and 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
        self.process = subprocess.Popen([browser, '--remote-debugging-pipe', *flags], preexec_fn=wire,
                                        close_fds=False,   # pass_fds would close our new fds 3 and 4
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b''
        self._next_id = 0

    def call(self, method: str, session: str = '', **params) -> dict:
        """Send one command and return its result (events in between are skipped)."""
        self._next_id += 1
        message = {'id': self._next_id, 'method': method, 'params': params}
        if session:
            message['sessionId'] = session
        os.write(self._write, json.dumps(message).encode() + b'\0')
        while True:
            while b'\0' not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f'chromium closed the DevTools pipe during {method}')
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b'\0', 1)
            reply = json.loads(raw)
            if reply.get('id') == self._next_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method}: {reply["error"]}')
                return reply['result']

    def close(self) -> None:
        """Stop the browser."""
        self.process.terminate()
        self.process.wait(10)


def screenshot(browser: str, page: Path, out: Path, size: str, profile: str, timeout_s: float) -> str:
    """Open `page`, wait for its title to become done/error, save a PNG; returns the title."""
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--allow-file-access-from-files',
             '--hide-scrollbars', f'--window-size={size}', f'--user-data-dir={profile}', 'about:blank']
    tools = DevTools(browser, flags)
    try:
        target = tools.call('Target.createTarget', url=page.as_uri())['targetId']
        session = tools.call('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        deadline, title = time.monotonic() + timeout_s, ''
        while time.monotonic() < deadline and title not in ('done', 'error'):
            time.sleep(0.2)
            title = tools.call('Runtime.evaluate', session, expression='document.title',
                               returnByValue=True)['result'].get('value', '')
        data = tools.call('Page.captureScreenshot', session, format='png')['data']
        out.write_bytes(base64.b64decode(data))
        return title
    finally:
        tools.close()


def main(argv=None) -> int:
    """Render the page and save the screenshot; 0 when the browser decoded a frame."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('video', type=Path, help='overlay.webm (or .mp4) to open')
    parser.add_argument('--out', type=Path, default=Path('overlay_in_chromium.png'), help='screenshot PNG')
    parser.add_argument('--size', default='1000,620', help='window W,H (default: 1000,620)')
    parser.add_argument('--timeout-s', type=float, default=30.0,
                        help='wait this long for a frame (default: 30)')
    args = parser.parse_args(argv)
    browser = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if browser is None:
        print('video_in_browser: no chromium binary; install it (Debian: apt-get install chromium)',
              file=sys.stderr)
        return 1
    video = args.video.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / 'page.html'
        mime = MIME.get(video.suffix, 'video/' + video.suffix[1:])
        page.write_text(PAGE.format(src=video.as_uri(), name=html.escape(video.name),
                                    mime_json=json.dumps(mime)))
        title = screenshot(browser, page, args.out.resolve(), args.size, f'{tmp}/profile', args.timeout_s)
    print(f'screenshot of {video} in {Path(browser).name} ({title or "timed out"}): {args.out}')
    return 0 if title == 'done' else 1


if __name__ == '__main__':
    sys.exit(main())
