// Reference encoder for the model/tokenizer tests: runs @lenml/tokenizers
// (a JavaScript port of the Hugging Face tokenizers) on a tokenizer.json and
// prints ids and decodes as JSON, so Go can compare them token for token.
//
// usage: node reference.js TOKENIZER_DIR REQUEST.json
//   REQUEST: {"texts": [base64 UTF-8 bytes...], "plain_texts": [base64...],
//             "chats": [{"messages": [{"role","content"}], "add_generation_prompt": bool}]}
//   stdout:  {"results": [{"ids", "ids_plain", "decode", "decode_skip"}],
//             "plain_results": [{"ids_plain", "decode"}], "chats": [string]}
// For plain_texts only the ids without added special tokens and their
// decode are computed: the quick mode for large inputs.
// Texts are passed as bytes so that invalid UTF-8 reaches node intact; node
// decodes them the way every JavaScript and Python caller would (WHATWG
// replacement, byte order mark kept).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..", "..");
const lib = require(path.join(root, ".cache/tokenizers/node_modules/@lenml/tokenizers"));

function load(dir) {
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const cfgPath = path.join(dir, "tokenizer_config.json");
  const tokenizerConfig = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
  return lib.TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}

function decode(tok, ids, skip) {
  if (ids.length === 0) return "";
  return tok.decode(ids, { skip_special_tokens: skip });
}

function main() {
  const [dir, reqPath] = process.argv.slice(2);
  if (!dir || !reqPath) {
    console.error("usage: node reference.js TOKENIZER_DIR REQUEST.json");
    process.exit(2);
  }
  const tok = load(dir);
  const req = JSON.parse(fs.readFileSync(reqPath, "utf8"));
  const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  const plainResults = (req.plain_texts || []).map((b64) => {
    const text = utf8.decode(Buffer.from(b64, "base64"));
    const idsPlain = tok.encode(text, { add_special_tokens: false });
    return { ids_plain: idsPlain, decode: decode(tok, idsPlain, false) };
  });
  const results = (req.texts || []).map((b64) => {
    const text = utf8.decode(Buffer.from(b64, "base64"));
    const ids = tok.encode(text, { add_special_tokens: true });
    const idsPlain = tok.encode(text, { add_special_tokens: false });
    return {
      ids,
      ids_plain: idsPlain,
      decode: decode(tok, ids, false),
      decode_skip: decode(tok, ids, true),
    };
  });
  const chats = (req.chats || []).map((c) =>
    tok.apply_chat_template(c.messages, {
      tokenize: false,
      add_generation_prompt: !!c.add_generation_prompt,
    })
  );
  process.stdout.write(JSON.stringify({ results, plain_results: plainResults, chats }));
}

main();
