// Counts again the tokens of the samples of src/tokens/samples.json with the three
// tokenizers their recorded counts come from, as a client receives each sample (the text
// inside a JSON string), and says whether the recorded counts still hold:
//
//   npm install --prefix /tmp/tok gpt-tokenizer@4.0.0 @anthropic-ai/tokenizer@0.0.4
//   NODE_PATH=/tmp/tok/node_modules node bench/tokens.mjs
//
// The Rust test `tokens::tests::the_estimate_is_never_below_a_real_tokenizers_count` checks
// the estimate against the recorded counts.
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
const require = createRequire(path.join(process.env.NODE_PATH || '.', 'x.js'));
const { encode: cl100k } = require('gpt-tokenizer/cjs/encoding/cl100k_base');
const { encode: o200k } = require('gpt-tokenizer/cjs/encoding/o200k_base');
const { countTokens: claude } = require('@anthropic-ai/tokenizer');

const file = new URL('../src/tokens/samples.json', import.meta.url);
const samples = JSON.parse(fs.readFileSync(file, 'utf8'));
let stale = 0;
for (const s of samples) {
  const json = JSON.stringify(s.text);
  const got = { cl100k: cl100k(json).length, o200k: o200k(json).length, claude: claude(json) };
  const same = got.cl100k === s.cl100k && got.o200k === s.o200k && got.claude === s.claude;
  if (!same) stale += 1;
  console.log(`${s.name.padEnd(10)} ${String([...json].length).padStart(5)} chars  cl100k ${got.cl100k}  o200k ${got.o200k}  claude ${got.claude}${same ? '' : '  (recorded: ' + [s.cl100k, s.o200k, s.claude].join('/') + ')'}`);
}
console.log(stale === 0 ? 'recorded counts hold' : `${stale} recorded counts differ`);
process.exit(stale === 0 ? 0 : 1);
