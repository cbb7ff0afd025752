// Run every graphql-http server audit (the GraphQL over HTTP spec) against one URL and print the
// results as one JSON array of {id, name, status, reason, httpStatus, body}; status is "ok",
// "notice" (a MAY), "warn" (a SHOULD) or "error" (a MUST), and the last three fields are given
// for an audit that did not pass (body cut to 2,000 characters).
// Usage: node tests/http_audit/audit.mjs http://127.0.0.1:8000/graphql
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
    entry.httpStatus = result.response.status;
    entry.body = result.response.bodyUsed
      ? null
      : (await result.response.text().catch(() => '')).slice(0, 2000);
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n');
