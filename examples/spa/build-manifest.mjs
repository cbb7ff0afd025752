// Writes trusted-documents.json beside this file: every document of operations.js under the
// hex SHA-256 of its text, the format GraphQL Code Generator's client preset writes and
// authgraph's TRUSTED_DOCUMENTS reads. Run after changing operations.js:
//   node examples/spa/build-manifest.mjs [output path]
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as operations from "./operations.js";

const out = process.argv[2] || fileURLToPath(new URL("./trusted-documents.json", import.meta.url));
const manifest = {};
for (const name of Object.keys(operations).sort()) {
  const text = operations[name];
  manifest[createHash("sha256").update(text, "utf8").digest("hex")] = text;
}
writeFileSync(out, JSON.stringify(manifest, null, 2) + "\n");
console.log(`${Object.keys(manifest).length} documents -> ${out}`);
