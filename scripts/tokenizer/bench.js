// Encode throughput of @lenml/tokenizers on one text file, for comparison
// with the Go benchmarks in model/tokenizer (see scripts/tokenizer/bench.sh).
//
// usage: node bench.js TOKENIZER_DIR TEXT_FILE [REPEATS]
// Prints one JSON line with the best seconds over REPEATS runs to encode the
// whole file in one call (whole_s) and line by line (lines_s), and the
// token count. The first run warms the JIT and the tokenizer's cache, as
// the Go benchmark's first iterations do.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..", "..");
const lib = require(path.join(root, ".cache/tokenizers/node_modules/@lenml/tokenizers"));

const [dir, file, repeatsArg] = process.argv.slice(2);
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const cfgPath = path.join(dir, "tokenizer_config.json");
const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tok = lib.TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const text = fs.readFileSync(file, "utf8");
const lines = text.split(/(?<=\n)/);
const repeats = Number(repeatsArg || 3);

function best(fn) {
  let b = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return b;
}

let tokens = 0;
const linesS = best(() => {
  tokens = 0;
  for (const l of lines) tokens += tok.encode(l, { add_special_tokens: false }).length;
});
const wholeS = best(() => tok.encode(text, { add_special_tokens: false }));
console.log(JSON.stringify({
  tokenizer: path.basename(path.dirname(dir)).replace(/^tokenizer-/, ""),
  bytes: Buffer.byteLength(text),
  tokens,
  whole_s: wholeS,
  lines_s: linesS,
}));
