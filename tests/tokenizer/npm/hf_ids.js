// Reference ids from @huggingface/tokenizers (a pure-JS implementation of Hugging Face's
// tokenizer.json, independent of ours).
//   node hf_ids.js FOLDER LIST   FOLDER: tokenizer.json + tokenizer_config.json; LIST: one path a line
// Prints one JSON array of ids per file (files are read as UTF-8 text).
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(process.env.NPM_DIR || 'build/npm', 'node_modules/@huggingface/tokenizers'));
const dir = process.argv[2];
const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const cfgPath = path.join(dir, 'tokenizer_config.json');
const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : {};
const tok = new Tokenizer(json, cfg);
const list = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter((l) => l.length);
const lines = [];
for (const f of list) lines.push(JSON.stringify(tok.encode(fs.readFileSync(f, 'utf8'), { add_special_tokens: false }).ids));
process.stdout.write(lines.join('\n') + '\n');
