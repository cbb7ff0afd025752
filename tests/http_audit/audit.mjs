// Run every graphql-http server audit (GraphQL over HTTP spec) against one URL and print the
// results as one JSON array: [{id, name, status: "ok" | "notice" | "warn" | "error", reason}].
// Usage: node audit.mjs http://127.0.0.1:8000/graphql
// Judging the results is the caller's job (tests/http_audit/test_http_audit.py); this script
// exits non-zero only when it cannot run the audits at all.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = String(result.reason);
  }
  // Read what is left of the body, so no response stays open.
  if (result.response && !result.response.bodyUsed) {
    await result.response.text().catch(() => undefined);
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
