// Encode throughput of @lenml/tokenizers on one text file, for comparison
// with `go test -bench` in model/tokenizer (see scripts/tokenizer/bench.sh).
//
// usage: node bench.js TOKENIZER_DIR TEXT_FILE [REPEATS]
// Prints one JSON line: best and median seconds to encode the whole file,
// token count.
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
const repeats = Number(repeatsArg || 3);

const times = [];
let n = 0;
for (let r = 0; r < repeats; r++) {
  const t0 = process.hrtime.bigint();
  n = tok.encode(text, { add_special_tokens: false }).length;
  times.push(Number(process.hrtime.bigint() - t0) / 1e9);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  tokenizer: path.basename(path.dirname(dir)),
  bytes: Buffer.byteLength(text),
  tokens: n,
  best_s: times[0],
  median_s: times[Math.floor(times.length / 2)],
}));
