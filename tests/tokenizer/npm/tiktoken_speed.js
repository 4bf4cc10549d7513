// tiktoken's single-thread encoding speed on a list of files (best of 3 passes):
//   node tiktoken_speed.js ENCODING LIST   -> one JSON line {bytes, tokens, mb_per_s_1thread[_cpu]}
// (_cpu: bytes per CPU second of the process, which holds up on a busy machine)
const fs = require('fs');
const path = require('path');
const { get_encoding } = require(path.join(process.env.NPM_DIR || 'build/npm', 'node_modules/tiktoken'));
const enc = get_encoding(process.argv[2]);
const texts = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter((l) => l.length)
  .map((f) => fs.readFileSync(f, 'utf8'));
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
let best = Infinity, bestCpu = Infinity, tokens = 0;
for (let r = 0; r < 3; ++r) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  tokens = 0;
  for (const t of texts) tokens += enc.encode_ordinary(t).length;
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  const c = process.cpuUsage(c0);
  bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
}
console.log(JSON.stringify({ encoder: 'tiktoken ' + process.argv[2], files: texts.length, bytes, tokens,
                             mb_per_s_1thread: bytes / 1e6 / best,
                             mb_per_s_1thread_cpu: bytes / 1e6 / bestCpu }));
enc.free();
