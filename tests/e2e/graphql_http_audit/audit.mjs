// Runs graphql-http's server audits against GRAPHQL_URL and prints one JSON array of
// {id, name, status, reason, responseStatus} on stdout. The Python test decides what must pass.
//
// The audits build their own requests, and a URL cannot carry a header, so every request goes
// through a fetch that adds the caller's token (GRAPHQL_TOKEN): without it, the endpoint would
// answer every audit with UNAUTHENTICATED.
import { auditServer } from 'graphql-http';

const url = process.env.GRAPHQL_URL;
const token = process.env.GRAPHQL_TOKEN;
if (!url || !token) {
  console.error('GRAPHQL_URL and GRAPHQL_TOKEN must be set');
  process.exit(2);
}

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const summary = results.map((result) => ({
  id: result.id,
  name: result.name,
  status: result.status,
  reason: result.reason ?? null,
  responseStatus: result.response ? result.response.status : null,
}));
process.stdout.write(JSON.stringify(summary));
