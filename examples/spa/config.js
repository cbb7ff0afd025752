// Where the authgraph API is. serve.py replaces this file with its --api value; when you
// serve this folder with another static server, edit it here.
export const API_URL = "http://localhost:8000/graphql";
// Whether the API loads trusted-documents.json (TRUSTED_DOCUMENTS): then the SPA sends each
// operation's documentId instead of its text. serve.py sets it from --trusted-documents.
export const TRUSTED_DOCUMENTS = false;
