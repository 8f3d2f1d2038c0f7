"""The decoders written in Instance.msg, run as written: bounds-checked, and the same masks as ours.

The C++ snippet is compiled with g++ -fsanitize=address,undefined and fed valid, truncated,
bit-flipped and random messages in one process: AddressSanitizer aborts on any read or write out of
bounds (each mask_rle sits in a heap buffer of exactly its size). On every case the C++ and the
Python snippets must agree with vis_ros' own decoder: the same mask where it decodes, an error
where it raises.
"""
import shutil
import struct
import subprocess

import numpy as np
import pytest

from vis_ros.core.errors import InputError
from vis_ros.core.masks import Roi, decode_mask, encode_mask
from vis_ros.core.sequences import repo_root

MSG = repo_root() / 'vis_ros_msgs' / 'msg' / 'Instance.msg'
HARNESS = r'''
#include <cstdio>
#include <cstring>
%s
static bool read_u32(uint32_t & v) { return std::fread(&v, 4, 1, stdin) == 1; }
int main() {
  uint32_t count;
  if (!read_u32(count)) return 2;
  for (uint32_t c = 0; c < count; ++c) {
    uint32_t f[7];
    for (auto & v : f) if (!read_u32(v)) return 2;
    uint8_t * rle = new uint8_t[f[6] ? f[6] : 1];   // exactly sized: ASan sees any overrun
    if (f[6] && std::fread(rle, 1, f[6], stdin) != f[6]) return 2;
    std::vector<uint8_t> mask;
    bool ok = decode_mask_rle(f[6] ? rle : nullptr, f[6], f[0], f[1], f[2], f[3], f[4], f[5], mask);
    delete[] rle;
    std::printf("%%d ", ok ? 1 : 0);
    if (ok) for (size_t i = 0; i < mask.size(); ++i) std::putchar(mask[i] ? '1' : '0');
    std::putchar('\n');
  }
  return 0;
}
'''


def snippet(language):
    """The lines between '# BEGIN decoder <language>' and '# END decoder <language>', unindented."""
    lines = MSG.read_text().splitlines()
    start = lines.index(f'# BEGIN decoder {language}') + 1
    end = lines.index(f'# END decoder {language}')
    return '\n'.join(line[4:] for line in lines[start:end])


def ours(case):
    x, y, w, h, width, height, data = case
    try:
        return decode_mask(Roi(x, y, w, h), data, height, width)
    except InputError:
        return None


def make_cases(seed=0):
    """Valid encodings of random masks, then truncated, bit-flipped, re-rooted and random ones."""
    rng = np.random.default_rng(seed)
    valid = []
    for _ in range(120):
        height, width = int(rng.integers(1, 24)), int(rng.integers(1, 32))
        mask = rng.random((height, width)) < rng.uniform(0, 1)
        if rng.random() < 0.5:   # blobs as well as noise
            mask = np.zeros((height, width), bool)
            mask[rng.integers(height):, rng.integers(width):] = True
        roi, data = encode_mask(mask)
        valid.append((*roi, width, height, data))
    cases = list(valid)
    for x, y, w, h, width, height, data in valid:
        for cut in range(len(data)):
            cases.append((x, y, w, h, width, height, data[:cut]))
        if data:
            flipped = bytearray(data)
            flipped[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
            cases.append((x, y, w, h, width, height, bytes(flipped)))
            cases.append((x, y, w, h, width, height, data + bytes([int(rng.integers(256))])))
        cases.append((x + 1, y, w, h, width, height, data))             # roi off the right edge
        cases.append((x, y, 0, h, width, height, data))                 # empty roi with bytes
    for _ in range(400):
        width, height = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        w, h = int(rng.integers(0, width + 2)), int(rng.integers(0, height + 2))
        data = bytes(rng.integers(0, 256, int(rng.integers(0, 24)), dtype=np.uint8))
        cases.append((int(rng.integers(0, 3)), int(rng.integers(0, 3)), w, h, width, height, data))
    cases.append((0, 0, 4, 4, 4, 4, bytes([0xFF] * 11 + [0x01])))           # over-long varint
    cases.append((0, 0, 4, 4, 4, 4, bytes([0x80] * 9 + [0x7F, 0x10])))      # 2^63-range run
    return cases


def encode_cases(cases):
    out = [struct.pack('<I', len(cases))]
    for x, y, w, h, width, height, data in cases:
        out.append(struct.pack('<7I', x, y, w, h, width, height, len(data)) + data)
    return b''.join(out)


@pytest.fixture(scope='module')
def cases():
    return make_cases()


def test_cpp_decoder_is_bounds_checked_and_matches_ours(tmp_path, cases):
    compiler = shutil.which('g++')
    if compiler is None:
        pytest.skip('g++ is not installed: the C++ decoder snippet cannot be compiled here')
    source = tmp_path / 'decoder.cpp'
    source.write_text(HARNESS % snippet('C++'))
    binary = tmp_path / 'decoder'
    subprocess.run([compiler, '-std=c++17', '-O1', '-g', '-fsanitize=address,undefined',
                    '-fno-sanitize-recover=all', str(source), '-o', str(binary)], check=True)
    run = subprocess.run([str(binary)], input=encode_cases(cases), capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()[-3000:]   # ASan/UBSan abort with a report
    lines = run.stdout.decode().splitlines()
    assert len(lines) == len(cases)
    decoded = 0
    for case, line in zip(cases, lines):
        expected = ours(case)
        ok, _, bits = line.partition(' ')
        assert ok == ('0' if expected is None else '1'), case
        if expected is not None:
            assert bits == ''.join('1' if v else '0' for v in expected.ravel()), case
            decoded += 1
    assert 120 <= decoded < len(cases)   # both kinds were exercised


def test_python_decoder_snippet_matches_ours(cases):
    namespace = {}
    exec(snippet('Python'), namespace)   # the text of Instance.msg, as a reader would paste it
    decode = namespace['decode_mask_rle']
    for case in cases:
        expected = ours(case)
        try:
            got = np.array(decode(case[6], *case[:6]), bool)
        except ValueError:
            got = None
        if expected is None:
            assert got is None, case
        else:
            np.testing.assert_array_equal(got, expected, err_msg=str(case))
