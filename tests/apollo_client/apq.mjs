// Apollo Client with its persisted-queries link against a real `authgraph serve`.
// Usage: node apq.mjs <graphql url> <access token>
// Prints one JSON object: every HTTP exchange the link made, and the results it returned.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";

const [url, token] = process.argv.slice(2);
const exchanges = [];

// What the link sent and what it got back, so the test can check the protocol itself.
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const text = await response.clone().text();
  let sent = {};
  if (init && typeof init.body === "string") sent = JSON.parse(init.body);
  else sent = Object.fromEntries(new URL(String(input)).searchParams);
  const answer = JSON.parse(text);
  exchanges.push({
    method: (init && init.method) || "GET",
    sentQuery: typeof sent.query === "string",
    sentHash: JSON.stringify(sent.extensions || "").includes("sha256Hash"),
    status: response.status,
    codes: (answer.errors || []).map((e) => (e.extensions || {}).code),
  });
  return response;
}

function client(headers) {
  const sha256 = (text) => createHash("sha256").update(text).digest("hex");
  const http = new HttpLink({ uri: url, fetch: recordingFetch, headers });
  return new ApolloClient({
    link: createPersistedQueryLink({ sha256 }).concat(http),
    cache: new InMemoryCache(),
  });
}

const VIEWER = gql`query Viewer { viewer { id email } }`;
const results = [];
// First client: not found, then registered with the document.
results.push((await client({ Authorization: `Bearer ${token}` }).query({ query: VIEWER })).data);
// A second client (no shared cache): the hash alone is enough now.
results.push((await client({ Authorization: `Bearer ${token}` }).query({ query: VIEWER })).data);
// Without a token: the same document, answered null.
results.push((await client({}).query({ query: VIEWER })).data);
console.log(JSON.stringify({ exchanges, results }));
