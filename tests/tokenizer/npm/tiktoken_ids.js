// Reference ids from tiktoken (npm, WASM build).
//   node tiktoken_ids.js ENCODING LIST   LIST: one file path per line
// Prints one JSON array of ids per file. Valid UTF-8 is encoded with encode_ordinary (special
// token text is text). A file with invalid UTF-8 is encoded the way tiktoken encodes raw bytes:
// each maximal well-formed stretch as text, each run of invalid bytes merged byte by byte by
// rank (pairs whose bytes form a token, lowest rank first, leftmost on ties).
const fs = require('fs');
const path = require('path');
const { get_encoding } = require(path.join(process.env.NPM_DIR || 'build/npm', 'node_modules/tiktoken'));
const enc = get_encoding(process.argv[2]);
const list = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter((l) => l.length);

// Rank (= id) of each token's bytes, for merging runs of invalid bytes.
let ranks = null;
function rank(bytes) {
  if (!ranks) {
    ranks = new Map();
    enc.token_byte_values().forEach((b) => {
      const key = Buffer.from(b).toString('latin1');
      ranks.set(key, enc.encode_single_token(Uint8Array.from(b)));
    });
  }
  const r = ranks.get(Buffer.from(bytes).toString('latin1'));
  return r === undefined ? -1 : r;
}
function mergeBytes(bytes) {
  let parts = bytes.map((b) => [b]);
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; ++i) {
      const r = rank([...parts[i], ...parts[i + 1]]);
      if (r >= 0 && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) break;
    parts.splice(best, 2, [...parts[best], ...parts[best + 1]]);
  }
  return parts.map((p) => rank(p));
}
// Length of the well-formed UTF-8 sequence at i, 0 if none (the same rules as the Unicode standard).
function seqLen(b, i) {
  const c = b[i];
  const cont = (k, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) return cont(1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(2) ? 3 : 0;
  if (c >= 0xf0 && c <= 0xf4) return cont(1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
function encodeBytes(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    let j = i;
    while (j < buf.length && seqLen(buf, j) > 0) j += seqLen(buf, j);
    if (j > i) for (const id of enc.encode_ordinary(buf.subarray(i, j).toString('utf8'))) out.push(id);
    let k = j;
    while (k < buf.length && seqLen(buf, k) === 0) ++k;
    if (k > j) for (const id of mergeBytes([...buf.subarray(j, k)])) out.push(id);
    i = k;
  }
  return out;
}
const lines = [];
for (const f of list) lines.push(JSON.stringify(encodeBytes(fs.readFileSync(f))));
process.stdout.write(lines.join('\n') + '\n');
